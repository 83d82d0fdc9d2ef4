/*
 * Scaled dot-product attention (Vaswani et al. 2017), composed of core ops, and the two masks it takes.
 *
 *   weights = softmax(q·kᵀ / √hs  with blocked positions set to -∞)   [..., Tq, Tk]
 *   output  = dropout(weights) · v                                     [..., Tq, hv]
 *
 * Masks are "non-zero = blocked", as PyTorch's boolean masks (True: may not attend). A query row whose
 * keys are all blocked gets NaN weights, as in PyTorch; a causal mask never blocks a whole row, and a
 * padding mask only does for an entry of length 0.
 */
import {
  Generator, LoomError, ShapeError, defaultGenerator, dropout, fmtShape, matmul, mul, softmax, tensor, where,
  type Backend, type Tensor,
} from '@loom/core';

export interface ScaledDotProductOptions {
  /**
   * Non-zero where a query may not attend to a key; broadcast against [..., Tq, Tk]. Several masks block
   * the union of their positions. Default none.
   */
  mask?: Tensor | readonly Tensor[] | null;
  /** Dropout on the weights before they multiply v (training only). Default 0. */
  dropout?: number;
  /** Default true: dropout applies. */
  training?: boolean;
  /** For the dropout masks. Default defaultGenerator. */
  generator?: Generator;
}

export interface ScaledDotProductResult {
  /** [..., Tq, hv] */
  output: Tensor;
  /** [..., Tq, Tk], before dropout (each row sums to 1). */
  weights: Tensor;
}

/** q [..., Tq, hs], k [..., Tk, hs], v [..., Tk, hv] (leading axes broadcast) → output and weights. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: ScaledDotProductOptions = {}): ScaledDotProductResult {
  const where_ = 'scaledDotProductAttention';
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (t.rank < 2) throw new ShapeError(`${where_}: '${name}' must be [..., T, features], got ${fmtShape(t.shape)}`);
  }
  const hs = q.shape[q.rank - 1];
  if (k.shape[k.rank - 1] !== hs) throw new ShapeError(`${where_}: 'q' ${fmtShape(q.shape)} and 'k' ${fmtShape(k.shape)} must have the same last axis (hs)`);
  if (v.shape[v.rank - 2] !== k.shape[k.rank - 2]) throw new ShapeError(`${where_}: 'k' ${fmtShape(k.shape)} and 'v' ${fmtShape(v.shape)} must have the same number of keys (axis -2)`);
  const p = opts.dropout ?? 0;
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new LoomError(`${where_}: opts.dropout must be a number in [0, 1), got ${String(p)}`);
  // q is scaled before the product, as PyTorch does (one pass over [Tq, hs] instead of [Tq, Tk]).
  let scores = matmul(mul(q, 1 / Math.sqrt(hs)), k, false, true); // [..., Tq, Tk]
  const masks = opts.mask ? (Array.isArray(opts.mask) ? opts.mask : [opts.mask]) as readonly Tensor[] : [];
  for (const m of masks) scores = where(m, -Infinity, scores);
  const weights = softmax(scores, -1);
  const dropped = dropout(weights, p, opts.training ?? true, opts.generator ?? defaultGenerator);
  return { output: matmul(dropped, v), weights };
}

/**
 * [Tq, Tk]: 1 where key j lies in query i's future (j > i + Tk - Tq), else 0. With Tq = Tk it is the upper
 * triangle above the diagonal (PyTorch's generate_square_subsequent_mask, as booleans).
 */
export function causalMask(Tq: number, Tk = Tq, opts: { backend?: Backend } = {}): Tensor {
  if (!(Number.isInteger(Tq) && Tq > 0 && Number.isInteger(Tk) && Tk > 0)) {
    throw new LoomError(`causalMask: Tq and Tk must be positive integers, got ${Tq} and ${Tk}`);
  }
  const m = new Float32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) for (let j = i + Tk - Tq + 1; j < Tk; j++) m[i * Tk + j] = 1;
  return tensor(m, [Tq, Tk], { backend: opts.backend });
}

/** [B, T]: 1 at positions at or past each entry's length (PyTorch's key_padding_mask), else 0. */
export function paddingMask(lengths: readonly number[], T: number, opts: { backend?: Backend } = {}): Tensor {
  if (!(Number.isInteger(T) && T > 0)) throw new LoomError(`paddingMask: T must be a positive integer, got ${T}`);
  const B = lengths.length;
  if (B === 0) throw new LoomError('paddingMask: lengths must hold one entry per batch entry, got none');
  const m = new Float32Array(B * T);
  lengths.forEach((n, b) => {
    if (!(Number.isInteger(n) && n >= 0 && n <= T)) throw new LoomError(`paddingMask: lengths[${b}] must be an integer in [0, ${T}], got ${n}`);
    m.fill(1, b * T + n, (b + 1) * T);
  });
  return tensor(m, [B, T], { backend: opts.backend });
}
