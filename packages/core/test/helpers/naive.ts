// Definitions written as directly as possible, in float64 over plain index arithmetic, to check kernels
// against. Slow and obviously correct; shapes are row-major.

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function unravel(i: number, shape: Shape): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: Shape): number {
  let off = 0;
  for (let d = 0; d < shape.length; d++) off = off * shape[d] + idx[d];
  return off;
}

/** The element of x (of `shape`) that broadcasting reads for output index `outIdx`. */
export function broadcastRead(x: ArrayLike<number>, shape: Shape, outIdx: readonly number[]): number {
  const lead = outIdx.length - shape.length;
  return x[ravel(shape.map((d, i) => (d === 1 ? 0 : outIdx[lead + i])), shape)];
}

export function broadcastShape(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`naive: cannot broadcast ${a} and ${b}`);
    return da === 1 ? db : da;
  });
}

export function binary(f: (x: number, y: number) => number, a: ArrayLike<number>, aShape: Shape, b: ArrayLike<number>, bShape: Shape): { data: Float64Array; shape: number[] } {
  const shape = broadcastShape(aShape, bShape);
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = f(broadcastRead(a, aShape, idx), broadcastRead(b, bShape, idx));
  }
  return { data, shape };
}

/** Reduction over `axes` (all when undefined) with keepDims. */
export function reduce(kind: 'sum' | 'max', x: ArrayLike<number>, shape: Shape, axes: readonly number[] | undefined, keepDims: boolean): { data: Float64Array; shape: number[] } {
  const ax = (axes ?? shape.map((_, i) => i)).map((a) => (a < 0 ? a + shape.length : a));
  const keepShape = shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const data = new Float64Array(sizeOf(keepShape)).fill(kind === 'sum' ? 0 : -Infinity);
  for (let i = 0; i < sizeOf(shape); i++) {
    const idx = unravel(i, shape).map((v, d) => (ax.includes(d) ? 0 : v));
    const o = ravel(idx, keepShape);
    data[o] = kind === 'sum' ? data[o] + x[i] : Math.max(data[o], x[i]);
  }
  return { data, shape: keepDims ? keepShape : shape.filter((_, i) => !ax.includes(i)) };
}

/** op(a)·op(b) over the last two axes with broadcast batch axes. */
export function matmul(a: ArrayLike<number>, aShape: Shape, b: ArrayLike<number>, bShape: Shape, transA: boolean, transB: boolean): { data: Float64Array; shape: number[] } {
  const [ar, ac] = aShape.slice(-2), [br, bc] = bShape.slice(-2);
  const m = transA ? ac : ar, k = transA ? ar : ac, n = transB ? br : bc;
  const batchShape = broadcastShape(aShape.slice(0, -2), bShape.slice(0, -2));
  const shape = [...batchShape, m, n];
  const data = new Float64Array(sizeOf(shape));
  const aBatch = aShape.slice(0, -2), bBatch = bShape.slice(0, -2);
  for (let bi = 0; bi < sizeOf(batchShape); bi++) {
    const bIdx = unravel(bi, batchShape);
    const aOff = ravelBroadcast(bIdx, aBatch) * ar * ac, bOff = ravelBroadcast(bIdx, bBatch) * br * bc;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = transA ? a[aOff + p * ac + i] : a[aOff + i * ac + p];
          const bv = transB ? b[bOff + j * bc + p] : b[bOff + p * bc + j];
          s += av * bv;
        }
        data[(bi * m + i) * n + j] = s;
      }
    }
  }
  return { data, shape };
}

function ravelBroadcast(outIdx: readonly number[], shape: Shape): number {
  const lead = outIdx.length - shape.length;
  return ravel(shape.map((d, i) => (d === 1 ? 0 : outIdx[lead + i])), shape);
}

export function permute(x: ArrayLike<number>, shape: Shape, perm: readonly number[]): Float64Array {
  const outShape = perm.map((p) => shape[p]);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) {
    const oIdx = unravel(i, outShape);
    const idx = new Array<number>(shape.length);
    perm.forEach((p, j) => (idx[p] = oIdx[j]));
    out[i] = x[ravel(idx, shape)];
  }
  return out;
}

/** The box [starts, starts + outShape) of x (starts already non-negative). */
export function slice(x: ArrayLike<number>, shape: Shape, starts: readonly number[], outShape: Shape): Float64Array {
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) out[i] = x[ravel(unravel(i, outShape).map((v, d) => v + starts[d]), shape)];
  return out;
}

export function logSoftmaxRows(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < cols; j++) m = Math.max(m, x[r * cols + j]);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[r * cols + j] - m);
    for (let j = 0; j < cols; j++) out[r * cols + j] = x[r * cols + j] - m - Math.log(s);
  }
  return out;
}

/** Throws naming the first element where |actual - expected| > atol + rtol·|expected| (NaN matches NaN, ±Infinity itself). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = 'values'): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const x = actual[i], y = expected[i];
    if (Number.isNaN(y) ? Number.isNaN(x) : !Number.isFinite(y) ? x === y : Math.abs(x - y) <= atol + rtol * Math.abs(y)) continue;
    throw new Error(`${what}: element ${i} is ${x}, expected ${y}`);
  }
}
