import { ShapeError, fmtShape } from './errors.js';

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * NumPy broadcasting: align trailing axes; each pair must be equal or contain a 1. `names` label the two
 * shapes in the error (the op's argument names); `context` is appended to it.
 */
export function broadcastShapes(op: string, a: Shape, b: Shape, names: readonly [string, string] = ["'a'", "'b'"], context = ''): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: ${names[0]} ${fmtShape(a)} and ${names[1]} ${fmtShape(b)} cannot be broadcast together (axis ${i - n}: ${da} vs ${db})${context}`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Resolves a possibly negative axis against a rank, naming the op when it is out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= rank) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normAxis(op, a, rank)))];
  return out.sort((x, y) => x - y);
}

/** Checks a shape given by a user: non-negative integers, with at most one -1 to infer. */
export function resolveShape(op: string, shape: Shape, size: number, from: Shape): number[] {
  let infer = -1;
  let known = 1;
  const out = [...shape];
  for (let i = 0; i < out.length; i++) {
    const d = out[i];
    if (d === -1) {
      if (infer >= 0) throw new ShapeError(`${op}: only one dimension can be -1, got ${fmtShape(shape)}`);
      infer = i;
    } else if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${op}: dimension ${i} must be a non-negative integer, got ${d} in ${fmtShape(shape)}`);
    } else known *= d;
  }
  if (infer >= 0) {
    if (known === 0 || size % known !== 0) {
      throw new ShapeError(`${op}: cannot reshape ${fmtShape(from)} (${size} elements) into ${fmtShape(shape)}`);
    }
    out[infer] = size / known;
  } else if (known !== size) {
    throw new ShapeError(`${op}: cannot reshape ${fmtShape(from)} (${size} elements) into ${fmtShape(shape)} (${known} elements)`);
  }
  return out;
}
