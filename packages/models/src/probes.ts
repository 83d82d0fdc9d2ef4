/*
 * Embedding probes: what a trained embedding table [V, D] has learned, read by cosine similarity.
 * They work on ids; the caller maps words to ids and back with its vocabulary:
 *
 *   const ids = nearestNeighbours(model.embedding, vocab.id('king'), 5).map((n) => vocab.token(n.id));
 *
 * Everything here is plain host arithmetic in float64 (no graph): a probe is a query, not a layer.
 */
import { LoomError, ShapeError, fmtShape, type Tensor } from '@loom/core';

export interface Neighbour {
  id: number;
  /** Cosine similarity to the query vector, in [-1, 1]. */
  similarity: number;
}

/** The `k` rows most similar by cosine to row `id`, the row itself excluded, most similar first. */
export function nearestNeighbours(table: Tensor, id: number, k: number): Neighbour[] {
  const { rows, cols, data } = checkTable('nearestNeighbours', table);
  checkId('nearestNeighbours', 'id', id, rows);
  checkK('nearestNeighbours', k);
  const query = new Float64Array(cols);
  for (let j = 0; j < cols; j++) query[j] = data[id * cols + j];
  return rankByCosine(data, rows, cols, query, new Set([id]), k);
}

/**
 * Analogy by vector offset ("a is to b as ? is to c", Mikolov et al. 2013): the `k` rows closest by
 * cosine to â - b̂ + ĉ, where x̂ is row x scaled to unit length (the 3CosAdd rule of word2vec's
 * evaluation, so that frequent words with long vectors do not dominate). a, b and c are excluded from the
 * answers, as in that evaluation. For king - man + woman: analogy(table, king, man, woman, k).
 */
export function analogy(table: Tensor, a: number, b: number, c: number, k: number): Neighbour[] {
  const { rows, cols, data } = checkTable('analogy', table);
  checkId('analogy', 'a', a, rows);
  checkId('analogy', 'b', b, rows);
  checkId('analogy', 'c', c, rows);
  checkK('analogy', k);
  const na = rowNorm(data, a, cols), nb = rowNorm(data, b, cols), nc = rowNorm(data, c, cols);
  const query = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    query[j] = safeDiv(data[a * cols + j], na) - safeDiv(data[b * cols + j], nb) + safeDiv(data[c * cols + j], nc);
  }
  return rankByCosine(data, rows, cols, query, new Set([a, b, c]), k);
}

/** Cosine similarity of two rows of the table. */
export function cosineSimilarity(table: Tensor, i: number, j: number): number {
  const { rows, cols, data } = checkTable('cosineSimilarity', table);
  checkId('cosineSimilarity', 'i', i, rows);
  checkId('cosineSimilarity', 'j', j, rows);
  let dot = 0;
  for (let d = 0; d < cols; d++) dot += data[i * cols + d] * data[j * cols + d];
  const n = rowNorm(data, i, cols) * rowNorm(data, j, cols);
  return n > 0 ? dot / n : 0;
}

function rankByCosine(data: ArrayLike<number>, rows: number, cols: number, query: Float64Array,
  exclude: ReadonlySet<number>, k: number): Neighbour[] {
  let qn = 0;
  for (let j = 0; j < cols; j++) qn += query[j] * query[j];
  qn = Math.sqrt(qn);
  const scored: Neighbour[] = [];
  for (let r = 0; r < rows; r++) {
    if (exclude.has(r)) continue;
    let dot = 0, rn = 0;
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[o + j];
      dot += v * query[j];
      rn += v * v;
    }
    const n = Math.sqrt(rn) * qn;
    // A zero vector has no direction: similarity 0 (it ranks below every positively similar row).
    scored.push({ id: r, similarity: n > 0 ? dot / n : 0 });
  }
  // Ties broken by id so that results are deterministic.
  scored.sort((x, y) => y.similarity - x.similarity || x.id - y.id);
  return scored.slice(0, k);
}

function rowNorm(data: ArrayLike<number>, r: number, cols: number): number {
  let s = 0;
  for (let j = 0; j < cols; j++) s += data[r * cols + j] ** 2;
  return Math.sqrt(s);
}

function safeDiv(x: number, n: number): number {
  return n > 0 ? x / n : 0;
}

function checkTable(fn: string, table: Tensor): { rows: number; cols: number; data: ArrayLike<number> } {
  if (table.rank !== 2) throw new ShapeError(`${fn}: 'table' must be a 2-D embedding table [V, D], got ${fmtShape(table.shape)}`);
  if (table.dtype === 'int32') throw new LoomError(`${fn}: 'table' must be a float tensor, got int32`);
  return { rows: table.shape[0], cols: table.shape[1], data: table.data };
}

function checkId(fn: string, arg: string, id: number, rows: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= rows) {
    throw new LoomError(`${fn}: '${arg}' must be a row id in [0, ${rows}), got ${id}`);
  }
}

function checkK(fn: string, k: number): void {
  if (!Number.isInteger(k) || k <= 0) throw new LoomError(`${fn}: 'k' must be a positive integer, got ${k}`);
}
