/*
 * Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: the norm of all gradients taken
 * together as one vector; when it exceeds maxNorm, every gradient is scaled by maxNorm / (norm + 1e-6).
 *
 * The pieces are exported for the data-parallel coordinator, which clips the reduced gradient held in a
 * shared buffer: each worker computes sumOfSquares over its slice, the partial sums are added, then
 * every worker applies scaleRange(grads, clipScale(√total, maxNorm), lo, hi) to its slice.
 *
 * Unlike torch (which multiplies by a NaN coefficient), a non-finite norm leaves the gradients as they
 * are: the norm is returned and the caller decides (skip the step, stop, lower the loss scale).
 */
import { LoomError } from '../errors.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor.js';
import { fmt } from './fmt.js';

type FloatArray = Float32Array | Float64Array;

/**
 * Σ x[i]² over [lo, hi), accumulated in float64. Four partial sums (then added pairwise): one sum's chain of
 * dependent additions bounded the loop; this ran ~25% faster over W1's 4.6M gradients.
 */
export function sumOfSquares(arr: FloatArray, lo = 0, hi = arr.length): number {
  checkRange('sumOfSquares', arr, lo, hi);
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = lo;
  for (; i + 3 < hi; i += 4) {
    const a = arr[i], b = arr[i + 1], c = arr[i + 2], d = arr[i + 3];
    s0 += a * a; s1 += b * b; s2 += c * c; s3 += d * d;
  }
  for (; i < hi; i++) s0 += arr[i] * arr[i];
  return (s0 + s1) + (s2 + s3);
}

/** x[i] ·= factor over [lo, hi) (unrolled by four, as sumOfSquares). */
export function scaleRange(arr: FloatArray, factor: number, lo = 0, hi = arr.length): void {
  checkRange('scaleRange', arr, lo, hi);
  if (factor === 1) return;
  let i = lo;
  for (; i + 3 < hi; i += 4) { arr[i] *= factor; arr[i + 1] *= factor; arr[i + 2] *= factor; arr[i + 3] *= factor; }
  for (; i < hi; i++) arr[i] *= factor;
}

/**
 * The factor clipping multiplies gradients by: maxNorm / (totalNorm + 1e-6) when that is below 1,
 * otherwise 1. A NaN or infinite totalNorm gives 1 (no scaling; the caller sees the norm).
 */
export function clipScale(totalNorm: number, maxNorm: number): number {
  if (!Number.isFinite(totalNorm)) return 1;
  const c = maxNorm / (totalNorm + 1e-6);
  return c < 1 ? c : 1;
}

/** The gradients to clip: a module's or a parameter list's `.grad`s (nulls skipped), or one flat buffer. */
export type ClipTarget = Module | readonly Tensor[] | readonly [string, Tensor][] | FloatArray;

/**
 * Clips gradients in place so that their global normType-norm is at most maxNorm, and returns the norm
 * before clipping (as torch does). normType may be any positive number or Infinity (max |g|).
 */
export function clipGradNorm(target: ClipTarget, maxNorm: number, normType = 2): number {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new LoomError(`clipGradNorm: maxNorm must be a positive finite number, got ${fmt(maxNorm)}`);
  }
  if (typeof normType !== 'number' || !(normType > 0)) {
    throw new LoomError(`clipGradNorm: normType must be a positive number or Infinity, got ${fmt(normType)}`);
  }
  const grads = gradArrays(target);
  let total: number;
  if (normType === Infinity) {
    total = grads.reduce((m, g) => {
      const x = maxAbs(g);
      return x > m || Number.isNaN(x) ? x : m; // a NaN, once seen, stays
    }, 0);
  } else if (normType === 2) {
    total = Math.sqrt(grads.reduce((s, g) => s + sumOfSquares(g), 0));
  } else {
    let s = 0;
    for (const g of grads) for (let i = 0; i < g.length; i++) s += Math.abs(g[i]) ** normType;
    total = s ** (1 / normType);
  }
  const scale = clipScale(total, maxNorm);
  if (scale !== 1) for (const g of grads) scaleRange(g, scale);
  return total;
}

/** max |x[i]|, or NaN if any element is NaN. */
function maxAbs(g: FloatArray): number {
  let m = 0;
  for (let i = 0; i < g.length; i++) {
    const a = Math.abs(g[i]);
    if (a > m) m = a;
    else if (a !== a) return NaN;
  }
  return m;
}

function gradArrays(target: ClipTarget): FloatArray[] {
  if (target instanceof Float32Array || target instanceof Float64Array) return [target];
  let tensors: unknown[];
  if (target instanceof Module) tensors = target.parameters();
  else if (Array.isArray(target)) tensors = (target as unknown[]).map((t) => (Array.isArray(t) ? t[1] : t));
  else throw new LoomError(`clipGradNorm: expected a Module, a list of parameters (or [name, parameter] pairs) or a Float32Array, got ${fmt(target)}`);
  const out: FloatArray[] = [];
  for (const [i, t] of tensors.entries()) {
    if (!(t instanceof Tensor)) throw new LoomError(`clipGradNorm: item ${i} of the list is not a tensor`);
    const g = t.grad;
    if (!g) continue;
    const data = g.storage;
    if (!(data instanceof Float32Array || data instanceof Float64Array)) {
      throw new LoomError(`clipGradNorm: gradients must be float host arrays, got ${g.dtype} on backend ${g.backend.name}`);
    }
    out.push(data);
  }
  return out;
}

function checkRange(fn: string, arr: FloatArray, lo: number, hi: number): void {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < lo || hi > arr.length) {
    throw new LoomError(`${fn}: need integers 0 <= lo <= hi <= ${arr.length}, got [${fmt(lo)}, ${fmt(hi)})`);
  }
}
