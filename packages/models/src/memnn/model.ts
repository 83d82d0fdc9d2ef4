/*
 * End-To-End Memory Network (Sukhbaatar, Szlam, Weston, Fergus 2015), composed of core ops.
 *
 * One hop k (1..K), with u¹ the embedded question:
 *   m_i = Σ_j l_j ⊙ A^k x_ij + T_A^k(i)        memory vectors        [B, M, d]
 *   c_i = Σ_j l_j ⊙ C^k x_ij + T_C^k(i)        output vectors        [B, M, d]
 *   p   = softmax(uᵏ · m_i)  (over valid i)    attention             [B, M]
 *   o   = Σ_i p_i c_i                                                [B, d]
 *   uᵏ⁺¹ = uᵏ + o            (adjacent)   or   H uᵏ + o  (layer-wise)
 * answer logits = W uᴷ⁺¹                                             [B, V]
 *
 * Weight tying (Section 2.2):
 *   adjacent:   A¹ = B (the question embedding), Aᵏ⁺¹ = Cᵏ, W = Cᴷ (W's rows are Cᴷ's rows); the same for
 *               the temporal tables (T_Aᵏ⁺¹ = T_Cᵏ). K + 1 word tables, K + 1 temporal tables.
 *   layer-wise: A¹ = … = Aᴷ, C¹ = … = Cᴷ, with B, W and a d × d map H of their own.
 * With adjacent tying m of hop k + 1 is c of hop k, so each table's memory embedding is computed once.
 *
 * Sentence encoding: 'bow' sums the word vectors; 'position' weights word j of a sentence elementwise by
 * l_j (see positionEncoding). Padding words are the nil word (id 0): the tables are used through a mask
 * that zeroes row 0, so nil adds nothing and row 0 gets no gradient (the official code re-zeroes it after
 * every update instead).
 *
 * Empty memories: a story of n < memorySize statements leaves memorySize − n slots empty. In the official
 * code those slots hold the nil word, i.e. zero memories that take part in the softmax with score 0 and
 * add nothing to o: a hop can put its weight on "nothing". With emptyMemories 'attend' (the default) the
 * model does the same, exactly and without materialising the slots: one extra softmax column holding
 * log(memorySize − n). 'ignore' shares the attention among the story's memories only. Either way the
 * padding a batch adds is masked with −∞ and gets no attention, so an example's output does not depend
 * on the batch it is in.
 *
 * Linear start (Section 4.2): with `linearStart` set, the memory layers' softmaxes are removed
 * (p = uᵏ · m_i, padding slots 0); the final softmax over answers stays.
 */
import {
  Generator, LoomError, Module, Parameter, ShapeError, add, concat, crossEntropy, fmtShape, gatherRows, init, matmul,
  mul, reshape, slice, softmax, sum, tensor, where,
  type DType, type Tensor,
} from '@loom/core';
import { checkDtype, checkPositiveInts, checkSeed, stripUndefined } from '../checks.js';
import { argmax } from '../generate.js';
import type { MemN2NBatch } from './batch.js';

export type WeightTying = 'adjacent' | 'layerwise';
export type SentenceEncoding = 'bow' | 'position';
export type EmptyMemories = 'attend' | 'ignore';

export interface MemN2NConfig {
  /** V: word ids 0..V-1, 0 the nil word. Answers are classes among these ids. */
  vocabSize: number;
  /** d. The paper: 20 per task, 50 jointly. Default 20. */
  embedSize?: number;
  /** K. Default 3. */
  hops?: number;
  /** Memory slots, and rows of each temporal table. Default 50. */
  memorySize?: number;
  /** Default 'adjacent'. */
  tying?: WeightTying;
  /** Default 'position'. */
  encoding?: SentenceEncoding;
  /** J of the position encoding: the most words in a sentence or question. Required for 'position'. */
  sentenceSize?: number;
  /** Temporal encoding T_A, T_C. Default true. */
  temporal?: boolean;
  /** Every weight starts N(0, initStd²). Default 0.1. */
  initStd?: number;
  /** Default 0. */
  seed?: number;
  /** See above. Default 'attend' (the official code). */
  emptyMemories?: EmptyMemories;
  /** Default float32 (float64 for gradient checks). */
  dtype?: DType;
}

export const MEMN2N_DEFAULTS = {
  embedSize: 20,
  hops: 3,
  memorySize: 50,
  tying: 'adjacent' as WeightTying,
  encoding: 'position' as SentenceEncoding,
  sentenceSize: 0,
  temporal: true,
  initStd: 0.1,
  seed: 0,
  emptyMemories: 'attend' as EmptyMemories,
  dtype: 'float32' as DType,
} satisfies Partial<MemN2NConfig>;

/**
 * Position-encoding weights l [J, d]: l_kj = 1 + 4 (k − (d+1)/2)(j − (J+1)/2) / (d·J), j = 1..J the word
 * position, k = 1..d the dimension. This is the official MemN2N code's form (build_model.m), with J the
 * longest sentence; the paper writes l_kj = (1 − j/J) − (k/d)(1 − 2j/J) with J the sentence's own length,
 * which is the same bilinear shape halved and shifted by half a position. Sentences shorter than J use
 * the first columns.
 */
export function positionEncoding(J: number, d: number): Float64Array {
  const l = new Float64Array(J * d);
  for (let j = 1; j <= J; j++) {
    for (let k = 1; k <= d; k++) l[(j - 1) * d + (k - 1)] = 1 + (4 * (k - (d + 1) / 2) * (j - (J + 1) / 2)) / (d * J);
  }
  return l;
}

/** The tables hop k reads, after tying: indices into `embeddings` (and `temporal`). */
interface HopWeights {
  /** A (adjacent: k; layer-wise: 0). */
  inTable: number;
  /** C (adjacent: k + 1; layer-wise: 1). */
  outTable: number;
}

export class MemN2N extends Module {
  readonly config: Required<MemN2NConfig>;
  /**
   * adjacent: K + 1 tables [V, d]: 0 is A¹ = B, k is Cᵏ = Aᵏ⁺¹, K is also W.
   * layer-wise: [A, C, B, W].
   */
  embeddings: Parameter[];
  /** [M, d] each. adjacent: K + 1 (0 is T_A¹, k is T_Cᵏ = T_Aᵏ⁺¹); layer-wise: [T_A, T_C]; none without temporal encoding. */
  temporal: Parameter[];
  /** Layer-wise only: H [d, d] (u ← u·Hᵀ + o). */
  hidden: Parameter | null;
  /** Removes the memory layers' softmaxes (linear start). Not a config: training switches it off. */
  linearStart = false;
  private _nilMask: Tensor | null = null;
  private readonly _weights: Map<number, Tensor> = new Map();

  constructor(config: MemN2NConfig) {
    super();
    const where = 'MemN2N';
    const c: Required<MemN2NConfig> = { ...MEMN2N_DEFAULTS, ...stripUndefined(config) };
    checkPositiveInts(where, c, ['vocabSize', 'embedSize', 'hops', 'memorySize']);
    if (c.vocabSize < 2) throw new LoomError(`${where}: config.vocabSize must be at least 2 (the nil word and one more), got ${c.vocabSize}`);
    if (c.tying !== 'adjacent' && c.tying !== 'layerwise') throw new LoomError(`${where}: config.tying must be 'adjacent' or 'layerwise', got ${String(c.tying)}`);
    if (c.encoding !== 'bow' && c.encoding !== 'position') throw new LoomError(`${where}: config.encoding must be 'bow' or 'position', got ${String(c.encoding)}`);
    if (c.encoding === 'position' && (!Number.isInteger(c.sentenceSize) || c.sentenceSize < 1)) {
      throw new LoomError(`${where}: config.sentenceSize must be a positive integer (the most words in a sentence or question) with encoding 'position', got ${String(c.sentenceSize)}`);
    }
    if (c.emptyMemories !== 'attend' && c.emptyMemories !== 'ignore') throw new LoomError(`${where}: config.emptyMemories must be 'attend' or 'ignore', got ${String(c.emptyMemories)}`);
    if (typeof c.temporal !== 'boolean') throw new LoomError(`${where}: config.temporal must be a boolean, got ${String(c.temporal)}`);
    if (typeof c.initStd !== 'number' || !(c.initStd > 0)) throw new LoomError(`${where}: config.initStd must be a positive number, got ${String(c.initStd)}`);
    checkSeed(where, c.seed);
    checkDtype(where, c.dtype);
    this.config = c;
    const g = new Generator(c.seed);
    const { vocabSize: V, embedSize: d, hops: K, memorySize: M, dtype } = c;
    const make = (shape: number[]): Parameter => init.normal(new Parameter(shape, { dtype }), 0, c.initStd, g) as Parameter;
    const tables = c.tying === 'adjacent' ? K + 1 : 4;
    this.embeddings = Array.from({ length: tables }, () => make([V, d]));
    this.temporal = c.temporal ? Array.from({ length: c.tying === 'adjacent' ? K + 1 : 2 }, () => make([M, d])) : [];
    this.hidden = c.tying === 'layerwise' ? make([d, d]) : null;
  }

  private hop(k: number): HopWeights {
    return this.config.tying === 'adjacent' ? { inTable: k, outTable: k + 1 } : { inTable: 0, outTable: 1 };
  }

  private get queryTable(): number {
    return this.config.tying === 'adjacent' ? 0 : 2;
  }

  private get answerTable(): number {
    return this.config.tying === 'adjacent' ? this.config.hops : 3;
  }

  /** A word table with row 0 (nil) zeroed: what the answer layer reads. */
  private table(i: number): Tensor {
    const t = this.embeddings[i];
    if (!this._nilMask) {
      const m = new Array<number>(this.config.vocabSize).fill(1);
      m[0] = 0;
      this._nilMask = tensor(m, [this.config.vocabSize, 1], { dtype: t.dtype, backend: t.backend });
    }
    return mul(t, this._nilMask); // [V, d]
  }

  /** The position-encoding weights of a lookup at J positions, [J, V, d]: l_j, and 0 for word 0 (nil). Cached per J. */
  private weights(J: number): Tensor {
    let w = this._weights.get(J);
    if (!w) {
      const { vocabSize: V, embedSize: d, sentenceSize, dtype } = this.config;
      const l = positionEncoding(sentenceSize, d);
      const values = new Float64Array(J * V * d);
      for (let j = 0; j < J; j++) for (let v = 1; v < V; v++) values.set(l.subarray(j * d, (j + 1) * d), (j * V + v) * d);
      w = tensor(values, [J, V, d], { dtype, backend: this.embeddings[0].backend });
      this._weights.set(J, w);
    }
    return w;
  }

  /**
   * Σ_j l_j ⊙ E x_j over the last axis of ids [..., J] → [..., d]. The weights are applied to the table,
   * not to the gathered words: Ẽ = E ⊙ l is [J·V, d] with row j·V + x holding l_j ⊙ E x, so the lookup is
   * one gather of Ẽ at j·V + x_j and a sum over j. Multiplying J·V·d table entries instead of B·M·J·d
   * gathered ones (and the same in the backward pass) made a bAbI training step about 40% faster.
   */
  private encode(i: number, ids: Tensor, shifted: Map<Tensor, Tensor>): Tensor {
    const { vocabSize: V, embedSize: d, encoding, sentenceSize } = this.config;
    const J = ids.shape[ids.rank - 1];
    if (encoding === 'bow') return sum(gatherRows(this.table(i), ids), ids.rank - 1); // [..., d]
    if (J > sentenceSize) throw new ShapeError(`MemN2N: a sentence or question has ${J} words, more than config.sentenceSize = ${sentenceSize}`);
    let at = shifted.get(ids);
    if (!at) {
      const src = ids.data, out = new Int32Array(src.length);
      for (let n = 0; n < src.length; n++) out[n] = (n % J) * V + src[n];
      at = tensor(out, ids.shape, { dtype: 'int32', backend: ids.backend });
      shifted.set(ids, at);
    }
    const weighted = reshape(mul(this.embeddings[i], this.weights(J)), [J * V, d]); // [V, d] ⊙ [J, V, d] → [J·V, d]
    return sum(gatherRows(weighted, at), ids.rank - 1); // [..., J, d] → [..., d]
  }

  /**
   * Memory vectors [B, M, d] from word table i, plus temporal table i (the temporal tables are tied as the
   * word tables and indexed alike: adjacent 0..K, layer-wise 0 = T_A, 1 = T_C).
   */
  private memories(batch: MemN2NBatch, cache: Map<number, Tensor>, i: number, shifted: Map<Tensor, Tensor>): Tensor {
    let m = cache.get(i);
    if (!m) {
      m = this.encode(i, batch.stories, shifted); // [B, M, d]
      if (this.config.temporal) m = add(m, gatherRows(this.temporal[i], batch.times)); // + T(i) [B, M, d]
      cache.set(i, m);
    }
    return m;
  }

  /**
   * Answer logits [B, V], and each hop's attention [B, M] (softmax weights, which with emptyMemories
   * 'attend' leave the empty slots' share out; with linearStart the raw scores, padding 0).
   */
  run(batch: MemN2NBatch): { logits: Tensor; attention: Tensor[] } {
    this.checkBatch(batch);
    const { B, M } = batch;
    const d = this.config.embedSize;
    // Memories by table: with adjacent tying table k's serve as C of hop k and A of hop k + 1; layer-wise,
    // tables 0 and 1 serve every hop.
    const cache = new Map<number, Tensor>();
    const empty = this.config.emptyMemories === 'attend' ? this.emptyScores(batch) : null; // [B, 1]
    const shifted = new Map<Tensor, Tensor>(); // ids → lookup rows in the weighted tables (see encode)
    let u = this.encode(this.queryTable, batch.queries, shifted); // [B, d]
    const attention: Tensor[] = [];
    for (let k = 0; k < this.config.hops; k++) {
      const { inTable, outTable } = this.hop(k);
      const m = this.memories(batch, cache, inTable, shifted); // [B, M, d]
      const c = this.memories(batch, cache, outTable, shifted); // [B, M, d]
      const scores = reshape(matmul(m, reshape(u, [B, d, 1])), [B, M]); // [B, M]
      let p: Tensor;
      if (this.linearStart) p = where(batch.padding, 0, scores);
      else if (empty) p = slice(softmax(concat([where(batch.padding, -Infinity, scores), empty], 1), -1), [0, 0], [B, M]); // [B, M + 1] → [B, M]
      else p = softmax(where(batch.padding, -Infinity, scores), -1);
      attention.push(p);
      const o = reshape(matmul(reshape(p, [B, 1, M]), c), [B, d]); // [B, d]
      u = add(this.hidden ? matmul(u, this.hidden, false, true) : u, o);
    }
    // W = Cᴷ (adjacent) or its own table: logits = u·Wᵀ.
    const logits = matmul(u, this.table(this.answerTable), false, true); // [B, V]
    return { logits, attention };
  }

  /**
   * The softmax column standing for each entry's empty slots, [B, 1]: log(memorySize − n) (the slots'
   * scores are 0), −∞ when the memory is full.
   */
  private emptyScores(batch: MemN2NBatch): Tensor {
    const { B, M } = batch;
    const pad = batch.padding.data;
    const col = new Float64Array(B);
    for (let b = 0; b < B; b++) {
      let n = M;
      for (let m = 0; m < M; m++) n -= pad[b * M + m] !== 0 ? 1 : 0;
      const free = this.config.memorySize - n;
      col[b] = free > 0 ? Math.log(free) : -Infinity;
    }
    return tensor(col, [B, 1], { dtype: this.config.dtype, backend: this.embeddings[0].backend });
  }

  /** Answer logits [B, V]. */
  forward(batch: MemN2NBatch): Tensor {
    return this.run(batch).logits;
  }

  /**
   * Cross-entropy against batch.answers. 'sum' over the batch is the official code's (and what its
   * learning rate 0.01 and clipping norm 40 are for); 'mean' divides by B.
   */
  loss(batch: MemN2NBatch, reduction: 'sum' | 'mean' = 'sum'): Tensor {
    return crossEntropy(this.forward(batch), batch.answers, { reduction });
  }

  /** The most likely answer class of each entry. */
  predict(batch: MemN2NBatch): number[] {
    const logits = this.forward(batch).data;
    const V = this.config.vocabSize;
    return Array.from({ length: batch.B }, (_, b) => argmax(logits, b * V, V));
  }

  private checkBatch(batch: MemN2NBatch): void {
    const { B, M, J, Q } = batch;
    const expect = (name: string, t: Tensor, shape: number[]): void => {
      if (t.dtype !== 'int32' || t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
        throw new ShapeError(`MemN2N.forward: batch.${name} must be int32 ${fmtShape(shape)}, got ${t.dtype} ${fmtShape(t.shape)}`);
      }
    };
    expect('stories', batch.stories, [B, M, J]);
    expect('queries', batch.queries, [B, Q]);
    expect('times', batch.times, [B, M]);
    expect('padding', batch.padding, [B, M]);
    expect('answers', batch.answers, [B]);
    if (M > this.config.memorySize) throw new ShapeError(`MemN2N.forward: the batch has ${M} memory slots, more than config.memorySize = ${this.config.memorySize}`);
    const V = this.config.vocabSize;
    for (const [name, t] of [['stories', batch.stories], ['queries', batch.queries], ['answers', batch.answers]] as const) {
      const a = t.data;
      for (let i = 0; i < a.length; i++) {
        if (a[i] >= V) throw new ShapeError(`MemN2N.forward: batch.${name} holds id ${a[i]} at position ${i}, out of range for config.vocabSize = ${V}`);
      }
    }
  }
}
