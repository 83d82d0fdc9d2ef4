/*
 * Stories as word ids, and padded batches of them for MemN2N.
 *
 * Id 0 is the nil word: it pads sentences (and queries) to a common length. The model's embedding tables
 * keep row 0 at zero, so a nil word adds nothing to a sentence's bag of words.
 */
import { Generator, LoomError, tensor, type Tensor } from '@loom/core';

/** One question as word ids: the statements before it, the question, and its answer's class. */
export interface MemN2NExample {
  /** Statements in story order, each a list of word ids (≥ 1; 0 is the nil word). */
  story: readonly (readonly number[])[];
  query: readonly number[];
  /** The answer's class (a vocabulary id: a whole answer such as 'football,apple' is one class). */
  answer: number;
}

/**
 * A padded batch: the last `M` statements of each story (M = min(memorySize, the longest story in the
 * batch)), sentences padded to the longest one (J words), queries to Q words.
 */
export interface MemN2NBatch {
  B: number;
  M: number;
  J: number;
  Q: number;
  /** int32 [B, M, J]; slot m of entry b is statement (n_b − M' + m) of its story, M' = min(n_b, M). */
  stories: Tensor;
  /** int32 [B, Q]. */
  queries: Tensor;
  /**
   * int32 [B, M]: each memory's row of the temporal tables; 0 is the most recent statement. Padding
   * slots hold 0 (they are masked).
   */
  times: Tensor;
  /** int32 [B, M]: 1 where the slot is padding (it gets no attention), 0 for a statement. */
  padding: Tensor;
  /** int32 [B]. */
  answers: Tensor;
}

export interface MemN2NBatchOptions {
  /** Statements kept in memory: the most recent ones. Default 50 (Sukhbaatar et al. 2015). */
  memorySize?: number;
  /**
   * Random noise in time ("RN", Section 4.1): for each story of n memories, draw k uniformly from
   * 0..ceil(noise·n) empty memories, give the n real ones n of the n + k time rows at random (kept in
   * order, rows past the table capped at its last), i.e. as if k empty memories had been inserted at
   * random places. Used in training only. Default 0.
   */
  timeNoise?: number;
  /** Draws the noise. Required when timeNoise > 0. */
  generator?: Generator;
}

export function makeBatch(examples: readonly MemN2NExample[], opts: MemN2NBatchOptions = {}): MemN2NBatch {
  const where = 'makeBatch';
  const memorySize = opts.memorySize ?? 50;
  const noise = opts.timeNoise ?? 0;
  if (examples.length === 0) throw new LoomError(`${where}: needs at least one example`);
  if (!Number.isInteger(memorySize) || memorySize < 1) throw new LoomError(`${where}: opts.memorySize must be a positive integer, got ${String(memorySize)}`);
  if (typeof noise !== 'number' || !(noise >= 0)) throw new LoomError(`${where}: opts.timeNoise must be a number ≥ 0, got ${String(noise)}`);
  if (noise > 0 && !opts.generator) throw new LoomError(`${where}: opts.generator is required when opts.timeNoise > 0`);
  const B = examples.length;
  let M = 1, J = 1, Q = 1;
  examples.forEach((ex, b) => {
    M = Math.max(M, Math.min(ex.story.length, memorySize));
    Q = Math.max(Q, ex.query.length);
    const first = Math.max(0, ex.story.length - memorySize);
    for (let i = first; i < ex.story.length; i++) J = Math.max(J, ex.story[i].length);
    if (!Number.isInteger(ex.answer) || ex.answer < 0) throw new LoomError(`${where}: example ${b} has answer ${String(ex.answer)}, expected a class id ≥ 0`);
  });
  const stories = new Int32Array(B * M * J);
  const queries = new Int32Array(B * Q);
  const times = new Int32Array(B * M);
  const padding = new Int32Array(B * M).fill(1);
  const answers = new Int32Array(B);
  const rows: number[] = [];
  examples.forEach((ex, b) => {
    const n = Math.min(ex.story.length, memorySize);
    const first = ex.story.length - n;
    for (let m = 0; m < n; m++) {
      const s = ex.story[first + m];
      const at = (b * M + m) * J;
      for (let j = 0; j < s.length; j++) stories[at + j] = checkId(where, s[j], b, 'story');
      padding[b * M + m] = 0;
    }
    // Time rows, most recent = 0. With noise: n of the rows 0..n+k-1, in order (a random sorted subset).
    rows.length = 0;
    if (noise > 0 && n > 0) {
      const k = opts.generator!.int(Math.ceil(n * noise) + 1);
      const all = Array.from({ length: n + k }, (_, i) => i);
      for (let i = 0; i < n; i++) {
        const r = i + opts.generator!.int(n + k - i);
        [all[i], all[r]] = [all[r], all[i]];
      }
      rows.push(...all.slice(0, n).sort((x, y) => y - x).map((r) => Math.min(r, memorySize - 1)));
    } else {
      for (let m = 0; m < n; m++) rows.push(n - 1 - m);
    }
    for (let m = 0; m < n; m++) times[b * M + m] = rows[m];
    // An empty story: one nil memory stays unmasked (a zero vector), so the attention has somewhere to go.
    if (n === 0) padding[b * M] = 0;
    ex.query.forEach((id, j) => (queries[b * Q + j] = checkId(where, id, b, 'query')));
    answers[b] = ex.answer;
  });
  return {
    B, M, J, Q,
    stories: tensor(stories, [B, M, J], { dtype: 'int32' }),
    queries: tensor(queries, [B, Q], { dtype: 'int32' }),
    times: tensor(times, [B, M], { dtype: 'int32' }),
    padding: tensor(padding, [B, M], { dtype: 'int32' }),
    answers: tensor(answers, [B], { dtype: 'int32' }),
  };
}

function checkId(where: string, id: number, b: number, what: string): number {
  if (!Number.isInteger(id) || id < 0) throw new LoomError(`${where}: example ${b}'s ${what} holds ${String(id)}, expected word ids ≥ 0`);
  return id;
}
