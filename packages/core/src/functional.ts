/*
 * Ops composed from the primitives in ops.ts. None of them has a backward rule of its own.
 */
import { Generator, defaultGenerator } from './random.js';
import { Tensor, fromFunction } from './tensor.js';
import { LoomError, ShapeError, fmtShape } from './errors.js';
import {
  add, concat, div, gatherRows, gt, affine, lt, matmul, mul, reshape, slice, softmaxCrossEntropy, softmaxCrossEntropyComposed, sum, where,
} from './ops.js';
import { normAxis } from './shape.js';

/** y = x·Wᵀ + b, with W of shape [out, in] as in PyTorch. x is [..., in]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.rank !== 2) throw new ShapeError(`linear: 'weight' must be 2-D [out, in], got ${fmtShape(weight.shape)}`);
  if (x.shape[x.rank - 1] !== weight.shape[1]) {
    throw new ShapeError(`linear: 'x' ${fmtShape(x.shape)} has ${x.shape[x.rank - 1]} features, 'weight' ${fmtShape(weight.shape)} expects ${weight.shape[1]}`);
  }
  if (bias && x.rank >= 2) return affine(x, weight, bias); // the bias added as the product is stored (ops.ts)
  const y = matmul(x, weight, false, true);
  return bias ? add(y, bias) : y;
}

export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  let y = x;
  if (min !== undefined) y = where(lt(y, min), min, y);
  if (max !== undefined) y = where(gt(y, max), max, y);
  return y;
}

/** Sets the positions where mask is non-zero to value (gradient flows only through the others). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, value, x);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.rank + 1);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis('squeeze', axis, x.rank);
  if (x.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${axis} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('stack: needs at least one tensor');
  const a = normAxis('stack', axis, xs[0].rank + 1);
  return concat(xs.map((t) => unsqueeze(t, a)), a);
}

/** Splits along an axis into pieces of the given sizes (or into `sizes` equal pieces when a number). */
export function split(x: Tensor, sizes: number | readonly number[], axisArg = 0): Tensor[] {
  const axis = normAxis('split', axisArg, x.rank);
  const len = x.shape[axis];
  let parts: number[];
  if (typeof sizes === 'number') {
    if (len % sizes !== 0) throw new ShapeError(`split: axis ${axisArg} of ${fmtShape(x.shape)} (size ${len}) does not split into ${sizes} equal parts`);
    parts = new Array<number>(sizes).fill(len / sizes);
  } else parts = [...sizes];
  if (parts.reduce((s, p) => s + p, 0) !== len) {
    throw new ShapeError(`split: sizes [${parts.join(', ')}] do not add up to ${len}, the size of axis ${axisArg} of ${fmtShape(x.shape)}`);
  }
  const out: Tensor[] = [];
  let at = 0;
  for (const p of parts) {
    const starts = x.shape.map((_, i) => (i === axis ? at : 0));
    const ends = x.shape.map((d, i) => (i === axis ? at + p : d));
    out.push(slice(x, starts, ends));
    at += p;
  }
  return out;
}

/** Embedding lookup: ids (int32, any shape) → [...ids.shape, D]. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  return gatherRows(table, ids);
}

export interface CrossEntropyOptions {
  reduction?: 'mean' | 'sum' | 'none';
  /** Targets equal to this are skipped, and not counted in the mean (PyTorch's ignore_index). */
  ignoreIndex?: number;
}

/**
 * Cross-entropy of logits [N, C] (or [..., C]) against int32 class targets [N] (or [...]), as
 * torch.nn.functional.cross_entropy: the rows' losses from the fused softmaxCrossEntropy primitive, reduced.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return crossEntropyWith(softmaxCrossEntropy, 'crossEntropy', logits, targets, opts);
}

/**
 * crossEntropy composed from logSoftmax, gatherRows and where instead of the fused primitive: the reference
 * the fused one is tested against.
 */
export function crossEntropyComposed(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return crossEntropyWith(softmaxCrossEntropyComposed, 'crossEntropyComposed', logits, targets, opts);
}

function crossEntropyWith(rows: typeof softmaxCrossEntropy, op: string, logits: Tensor, targets: Tensor, opts: CrossEntropyOptions): Tensor {
  const reduction = opts.reduction ?? 'mean';
  if (targets.dtype !== 'int32') throw new LoomError(`${op}: 'targets' must be int32 class indices, got ${targets.dtype}`);
  const C = logits.shape[logits.rank - 1];
  const N = logits.size / C;
  if (targets.size !== N || logits.rank !== targets.rank + 1) {
    throw new ShapeError(`${op}: 'logits' ${fmtShape(logits.shape)} and 'targets' ${fmtShape(targets.shape)} disagree: expected targets of shape ${fmtShape(logits.shape.slice(0, -1))}`);
  }
  const t = targets.data;
  const ignore = opts.ignoreIndex;
  let counted = 0;
  for (let i = 0; i < N; i++) {
    const ti = t[i];
    if (ignore !== undefined && ti === ignore) continue;
    if (!(ti >= 0 && ti < C)) {
      throw new ShapeError(`${op}: 'targets' ${fmtShape(targets.shape)} holds ${ti} at position ${i}, out of range for 'logits' ${fmtShape(logits.shape)} (${C} classes)`);
    }
    counted++;
  }
  const losses = rows(reshape(logits, [N, C]), reshape(targets, [N]), ignore ?? null); // [N], 0 where ignored
  if (reduction === 'none') return reshape(losses, targets.shape);
  const total = sum(losses);
  // A mean over no counted targets is NaN, as in PyTorch.
  return reduction === 'sum' ? total : div(total, counted > 0 ? counted : Number.NaN);
}

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p), so
 * evaluation needs no rescaling. The mask comes from a seeded generator (reproducible runs).
 */
export function dropout(x: Tensor, p: number, training = true, generator: Generator = defaultGenerator): Tensor {
  if (!(p >= 0 && p < 1)) throw new LoomError(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  const scale = 1 / (1 - p);
  const mask = fromFunction(x.shape, () => (generator.random() >= p ? scale : 0), { dtype: x.dtype, backend: x.backend });
  return mul(x, mask);
}
