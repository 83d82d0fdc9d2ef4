import type { Backend, BinaryOp, ReduceOp, UnaryOp } from '../backend.js';
import { allocArray, arrayType, type DType, type FloatArray, type TypedArray } from '../dtype.js';
import { addBiasRows, gemmReference, pinReference, type PinnedGemm } from '../kernels/gemm-reference.js';
import {
  jsGates, recurrentBackwardHost, recurrentForwardHost, type GateKernels, type Gemm, type PinGemm, type RecurrentGradients, type RecurrentSpec,
} from '../fused/recurrent-kernel.js';
import { jsSoftmaxCE, type SoftmaxCEKernels } from '../fused/softmax-ce.js';
import { sizeOf, stridesOf, type Shape } from '../shape.js';

/*
 * The reference backend: plain TypeScript over host typed arrays. Every faster backend is tested
 * against it with the same suite. Elementwise loops are generated once per op with `new Function`
 * so that each op gets its own monomorphic loop (a shared loop calling an op closure runs several
 * times slower once V8 sees more than a few closures at the call site).
 */

type Arr = TypedArray;

const unaryExpr: Record<UnaryOp, string> = {
  neg: '-x',
  exp: 'Math.exp(x)',
  log: 'Math.log(x)',
  sqrt: 'Math.sqrt(x)',
  tanh: 'Math.tanh(x)',
  sigmoid: '1 / (1 + Math.exp(-x))',
  relu: 'x > 0 ? x : 0',
  abs: 'Math.abs(x)',
};

// dx in terms of the input x, the output y and the output gradient g.
const unaryGradExpr: Record<UnaryOp, string> = {
  neg: '-g',
  exp: 'g * y',
  log: 'g / x',
  sqrt: 'g * 0.5 / y',
  tanh: 'g * (1 - y * y)',
  sigmoid: 'g * y * (1 - y)',
  relu: 'x > 0 ? g : 0',
  abs: 'x > 0 ? g : (x < 0 ? -g : 0)',
};

const binaryExpr: Record<BinaryOp, string> = {
  add: 'x + y',
  sub: 'x - y',
  mul: 'x * y',
  div: 'x / y',
  pow: 'Math.pow(x, y)',
  lt: 'x < y ? 1 : 0',
  le: 'x <= y ? 1 : 0',
  gt: 'x > y ? 1 : 0',
  ge: 'x >= y ? 1 : 0',
  eq: 'x === y ? 1 : 0',
  ne: 'x !== y ? 1 : 0',
};

type UnaryLoop = (x: Arr, out: Arr, n: number) => void;
type UnaryGradLoop = (x: Arr, y: Arr, g: Arr, out: Arr, n: number) => void;
type BinaryLoops = {
  same: (a: Arr, b: Arr, out: Arr, n: number) => void;
  scalarB: (a: Arr, y: number, out: Arr, n: number) => void;
  scalarA: (x: number, b: Arr, out: Arr, n: number) => void;
  /** b is one block of m elements repeated along the leading axes (a bias row): out = a op b[i mod m]. */
  blockB: (a: Arr, b: Arr, out: Arr, n: number, m: number) => void;
  general: (a: Arr, b: Arr, out: Arr, shape: Shape, aStr: number[], bStr: number[]) => void;
};
type ReduceLoop = (x: Arr, out: Arr, outer: number, axisLen: number, inner: number) => void;

const DTYPES: readonly DType[] = ['float32', 'float64', 'int32'];

/**
 * One copy of every generated loop per dtype. V8 keeps type feedback per function: a loop that has seen
 * Float32Array, Float64Array and Int32Array goes polymorphic and ran about 4x slower (measured: a 4M-element
 * float32 addInPlace 16 ms, the per-dtype copy 4 ms). The dtype is written into each copy's source so that
 * no two copies are the same source text (V8 may share what it learns between those).
 */
function perDtype<T>(make: (fn: (name: string, ...argsAndBody: string[]) => unknown) => T): Record<DType, T> {
  const out = {} as Record<DType, T>;
  for (const dtype of DTYPES) {
    out[dtype] = make((name, ...argsAndBody) => {
      const body = argsAndBody.pop()!;
      // Named (e.g. add_same_float32) so that CPU profiles say which loop is hot.
      return new Function(`'use strict'; return function ${name}_${dtype}(${argsAndBody.join(', ')}) {\n${body}\n};`)();
    });
  }
  return out;
}

const unaryLoops = perDtype((fn) => mapRecord(unaryExpr, (e, op) =>
  fn(op, 'xs', 'out', 'n', `for (let i = 0; i < n; i++) { const x = xs[i]; out[i] = ${e}; }`) as UnaryLoop));

const unaryGradLoops = perDtype((fn) => mapRecord(unaryGradExpr, (e, op) =>
  fn(`${op}_backward`, 'xs', 'ys', 'gs', 'out', 'n',
    `for (let i = 0; i < n; i++) { const x = xs[i], y = ys[i], g = gs[i]; out[i] = ${e}; }`) as UnaryGradLoop));

const binaryLoops = perDtype((fn) => mapRecord(binaryExpr, (e, op): BinaryLoops => ({
  same: fn(`${op}_same`, 'a', 'b', 'out', 'n', `for (let i = 0; i < n; i++) { const x = a[i], y = b[i]; out[i] = ${e}; }`) as BinaryLoops['same'],
  scalarB: fn(`${op}_scalarB`, 'a', 'y', 'out', 'n', `for (let i = 0; i < n; i++) { const x = a[i]; out[i] = ${e}; }`) as BinaryLoops['scalarB'],
  scalarA: fn(`${op}_scalarA`, 'x', 'b', 'out', 'n', `for (let i = 0; i < n; i++) { const y = b[i]; out[i] = ${e}; }`) as BinaryLoops['scalarA'],
  blockB: fn(`${op}_blockB`, 'a', 'b', 'out', 'n', 'm',
    `for (let o = 0; o < n; o += m) for (let j = 0; j < m; j++) { const x = a[o + j], y = b[j]; out[o + j] = ${e}; }`) as BinaryLoops['blockB'],
  // Odometer over all axes but the last; the last axis is the inner loop with its own strides.
  general: fn(`${op}_general`, 'a', 'b', 'out', 'shape', 'aStr', 'bStr', `
    const rank = shape.length, last = shape[rank - 1], sa = aStr[rank - 1], sb = bStr[rank - 1];
    let outer = 1; for (let d = 0; d < rank - 1; d++) outer *= shape[d];
    const idx = new Array(rank).fill(0);
    let offA = 0, offB = 0, o = 0;
    for (let r = 0; r < outer; r++) {
      for (let j = 0; j < last; j++) { const x = a[offA + j * sa], y = b[offB + j * sb]; out[o++] = ${e}; }
      for (let d = rank - 2; d >= 0; d--) {
        idx[d]++; offA += aStr[d]; offB += bStr[d];
        if (idx[d] < shape[d]) break;
        offA -= aStr[d] * shape[d]; offB -= bStr[d] * shape[d]; idx[d] = 0;
      }
    }`) as BinaryLoops['general'],
})));

// Unrolled by four: V8 does not unroll, and this ran ~30% faster (a 4M-element add, 8.4 ms → 6.0 ms).
const addLoops = perDtype((fn) => fn('addInPlace', 'dst', 'src', 'n', `
    let i = 0;
    for (; i + 3 < n; i += 4) { dst[i] += src[i]; dst[i + 1] += src[i + 1]; dst[i + 2] += src[i + 2]; dst[i + 3] += src[i + 3]; }
    for (; i < n; i++) dst[i] += src[i];`) as (dst: Arr, src: Arr, n: number) => void);

// out is zero-filled on entry.
const reduceLoops = perDtype((fn): Record<ReduceOp, ReduceLoop> => ({
  // Over a leading axis (inner > 1, a bias gradient's column sums) four rows at a time: one read-modify-write
  // of out per four rows ran twice as fast ([400, 10000] → [10000]: 9.4 ms → 5.1 ms).
  sum: fn('sum', 'x', 'out', 'outer', 'axisLen', 'inner', `
    for (let o = 0; o < outer; o++) {
      const base = o * axisLen * inner, ob = o * inner;
      if (inner === 1) {
        let s = 0;
        for (let r = 0; r < axisLen; r++) s += x[base + r];
        out[ob] = s;
      } else {
        let r = 0;
        for (; r + 3 < axisLen; r += 4) {
          const r0 = base + r * inner, r1 = r0 + inner, r2 = r1 + inner, r3 = r2 + inner;
          for (let i = 0; i < inner; i++) out[ob + i] += (x[r0 + i] + x[r1 + i]) + (x[r2 + i] + x[r3 + i]);
        }
        for (; r < axisLen; r++) {
          const rb = base + r * inner;
          for (let i = 0; i < inner; i++) out[ob + i] += x[rb + i];
        }
      }
    }`) as ReduceLoop,
  max: fn('max', 'x', 'out', 'outer', 'axisLen', 'inner', `
    for (let o = 0; o < outer; o++) {
      const base = o * axisLen * inner, ob = o * inner;
      for (let i = 0; i < inner; i++) {
        let m = -Infinity;
        for (let r = 0; r < axisLen; r++) {
          const v = x[base + r * inner + i];
          if (v > m || Number.isNaN(v)) m = v; // NaN propagates, as in PyTorch
          if (Number.isNaN(m)) break;
        }
        out[ob + i] = m;
      }
    }`) as ReduceLoop,
}));

/** The size of the block `shape` repeats when broadcast to outShape along leading axes only, else 0. */
function leadingBroadcastBlock(shape: Shape, outShape: Shape): number {
  let first = 0;
  while (first < shape.length && shape[first] === 1) first++;
  const rest = shape.length - first, off = outShape.length - rest;
  if (off < 0) return 0;
  for (let i = 0; i < rest; i++) if (shape[first + i] !== outShape[off + i]) return 0;
  return sizeOf(shape);
}

function mapRecord<K extends string, V, W>(rec: Record<K, V>, f: (v: V, k: K) => W): Record<K, W> {
  const out = {} as Record<K, W>;
  for (const k of Object.keys(rec) as K[]) out[k] = f(rec[k], k);
  return out;
}

/** Strides of `shape` read as broadcast to `outShape` (0 on broadcast axes). */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const strides = stridesOf(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const off = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : strides[i];
  return out;
}

export class ReferenceBackend implements Backend<TypedArray> {
  readonly name: string = 'reference';

  alloc(dtype: DType, size: number): Arr {
    return allocArray(dtype, size);
  }
  fromArray(dtype: DType, values: ArrayLike<number>): Arr {
    return arrayType[dtype].from(values);
  }
  read(s: Arr): Arr {
    return s;
  }
  fill(s: Arr, _dtype: DType, value: number): void {
    s.fill(value);
  }
  cast(s: Arr, _from: DType, to: DType): Arr {
    return to === 'int32' ? Int32Array.from(s, (v) => Math.trunc(v)) : arrayType[to].from(s);
  }
  addInPlace(dst: Arr, src: Arr, dtype: DType): void {
    addLoops[dtype](dst, src, dst.length);
  }

  unary(op: UnaryOp, x: Arr, dtype: DType): Arr {
    const out = allocArray(dtype, x.length);
    unaryLoops[dtype][op](x, out, x.length);
    return out;
  }
  unaryBackward(op: UnaryOp, x: Arr, y: Arr, dy: Arr, dtype: DType): Arr {
    const out = allocArray(dtype, dy.length);
    unaryGradLoops[dtype][op](x, y, dy, out, dy.length);
    return out;
  }

  binary(op: BinaryOp, a: Arr, aShape: Shape, b: Arr, bShape: Shape, outShape: Shape, dtype: DType): Arr {
    const n = sizeOf(outShape);
    const out = allocArray(dtype, n);
    const loops = binaryLoops[dtype][op];
    if (n === 0) return out;
    let block: number;
    if (a.length === n && b.length === n) loops.same(a, b, out, n);
    else if (b.length === 1 && a.length === n) loops.scalarB(a, b[0], out, n);
    else if (a.length === 1 && b.length === n) loops.scalarA(a[0], b, out, n);
    else if (a.length === n && (block = leadingBroadcastBlock(bShape, outShape)) > 0) loops.blockB(a, b, out, n, block);
    else loops.general(a, b, out, outShape, broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape));
    return out;
  }

  where(cond: Arr, cShape: Shape, a: Arr, aShape: Shape, b: Arr, bShape: Shape, outShape: Shape, dtype: DType): Arr {
    const n = sizeOf(outShape);
    const out = allocArray(dtype, n);
    const cs = broadcastStrides(cShape, outShape);
    const as = broadcastStrides(aShape, outShape);
    const bs = broadcastStrides(bShape, outShape);
    const rank = outShape.length;
    const idx = new Array<number>(rank).fill(0);
    let oc = 0, oa = 0, ob = 0;
    for (let i = 0; i < n; i++) {
      out[i] = cond[oc] !== 0 ? a[oa] : b[ob];
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++; oc += cs[d]; oa += as[d]; ob += bs[d];
        if (idx[d] < outShape[d]) break;
        oc -= cs[d] * outShape[d]; oa -= as[d] * outShape[d]; ob -= bs[d] * outShape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  reduce(op: ReduceOp, x: Arr, outer: number, axisLen: number, inner: number, dtype: DType): Arr {
    const out = allocArray(dtype, outer * inner);
    reduceLoops[dtype][op](x, out, outer, axisLen, inner);
    return out;
  }

  matmul(a: Arr, b: Arr, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number, dtype: DType): Arr {
    const c = allocArray(dtype, batch * m * n) as FloatArray;
    // An empty product (k = 0) is all zeros, which c already is; empty operands have no valid leading dimension.
    if (c.length === 0 || k === 0) return c;
    const lda = transA ? m : k, ldb = transB ? k : n;
    for (let i = 0; i < batch; i++) {
      this.gemm(transA, transB, m, n, k, a as FloatArray, i * aBatchStride, lda, b as FloatArray, i * bBatchStride, ldb, c, i * m * n, n);
    }
    return c;
  }

  affine(x: Arr, w: Arr, bias: Arr, m: number, n: number, k: number, dtype: DType): Arr {
    const y = allocArray(dtype, m * n) as FloatArray;
    if (y.length === 0) return y;
    // k = 0 (no input features) is just the bias; a leading dimension is at least 1 even then.
    this.gemm(false, true, m, n, k, x as FloatArray, 0, Math.max(k, 1), w as FloatArray, 0, Math.max(k, 1), y, 0, n, false, bias as FloatArray);
    return y;
  }

  matmulAddInto(dst: Arr, a: Arr, b: Arr, m: number, n: number, k: number, transA: boolean, transB: boolean): void {
    if (m === 0 || n === 0 || k === 0) return;
    this.gemm(transA, transB, m, n, k, a as FloatArray, 0, transA ? m : k, b as FloatArray, 0, transB ? k : n, dst as FloatArray, 0, n, true);
  }

  /**
   * The one GEMM entry point (C = op(A)·op(B), or C += with accumulate), then + bias on every row of C when
   * given (after the product, as a separate add would); faster backends override it.
   */
  protected gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: FloatArray, aOff: number, lda: number, b: FloatArray, bOff: number, ldb: number,
    c: FloatArray, cOff: number, ldc: number, accumulate = false, bias: FloatArray | null = null): void {
    gemmReference(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate);
    if (bias) addBiasRows(c, cOff, ldc, m, n, bias);
  }

  permute(x: Arr, shape: Shape, perm: readonly number[], dtype: DType): Arr {
    const rank = shape.length;
    const outShape = perm.map((p) => shape[p]);
    const inStr = stridesOf(shape);
    const str = perm.map((p) => inStr[p]); // input stride for each output axis
    const out = allocArray(dtype, x.length);
    copyStrided(x, 0, str, out, 0, stridesOf(outShape), outShape, rank, false);
    return out;
  }

  sliceCopy(x: Arr, shape: Shape, starts: readonly number[], outShape: Shape, dtype: DType): Arr {
    const out = allocArray(dtype, sizeOf(outShape));
    const inStr = stridesOf(shape);
    let off = 0;
    for (let d = 0; d < shape.length; d++) off += starts[d] * inStr[d];
    copyStrided(x, off, inStr, out, 0, stridesOf(outShape), outShape, shape.length, false);
    return out;
  }

  sliceAddInto(dst: Arr, dstShape: Shape, src: Arr, srcShape: Shape, starts: readonly number[]): void {
    const dStr = stridesOf(dstShape);
    let off = 0;
    for (let d = 0; d < dstShape.length; d++) off += starts[d] * dStr[d];
    copyStrided(src, 0, stridesOf(srcShape), dst, off, dStr, srcShape, srcShape.length, true);
  }

  gatherRows(table: Arr, cols: number, idx: Arr, n: number, dtype: DType): Arr {
    const out = allocArray(dtype, n * cols);
    for (let i = 0; i < n; i++) {
      const r = idx[i] * cols;
      out.set(table.subarray(r, r + cols), i * cols);
    }
    return out;
  }

  scatterAddRowsInto(dst: Arr, cols: number, idx: Arr, n: number, src: Arr): void {
    for (let i = 0; i < n; i++) {
      const r = idx[i] * cols, s = i * cols;
      for (let j = 0; j < cols; j++) dst[r + j] += src[s + j];
    }
  }

  logSoftmax(x: Arr, rows: number, cols: number, dtype: DType): Arr {
    const out = allocArray(dtype, rows * cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let m = -Infinity;
      for (let j = 0; j < cols; j++) if (x[o + j] > m) m = x[o + j];
      if (m === -Infinity) m = 0; // an all -inf row gives -inf/NaN as in PyTorch, without inf - inf here
      let s = 0;
      for (let j = 0; j < cols; j++) s += Math.exp(x[o + j] - m);
      const lse = m + Math.log(s);
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - lse;
    }
    return out;
  }

  softmaxCrossEntropy(logits: Arr, targets: Arr, rows: number, cols: number, ignoreIndex: number | null, dtype: DType): { losses: Arr; saved: Float64Array } {
    const losses = allocArray(dtype, rows) as FloatArray;
    const saved = new Float64Array(2 * rows);
    this.softmaxCEKernels().forward(logits as FloatArray, targets as Int32Array, rows, cols, ignoreIndex, losses, saved);
    return { losses, saved };
  }

  softmaxCrossEntropyBackward(logits: Arr, targets: Arr, saved: Arr, dLosses: Arr, rows: number, cols: number, ignoreIndex: number | null, dtype: DType): Arr {
    const dx = allocArray(dtype, rows * cols) as FloatArray;
    this.softmaxCEKernels().backward(logits as FloatArray, targets as Int32Array, saved as Float64Array, dLosses as FloatArray, rows, cols, ignoreIndex, dx);
    return dx;
  }

  /** The row passes of softmax cross-entropy: JavaScript here; faster backends override it. */
  protected softmaxCEKernels(): SoftmaxCEKernels {
    return jsSoftmaxCE;
  }

  recurrentForward(spec: RecurrentSpec, xp: Arr, wHh: Arr, bIh: Arr | null, bHh: Arr | null, h0: Arr, c0: Arr | null, save: boolean, dtype: DType): { y: Arr; saved: FloatArray[] } {
    return recurrentForwardHost(spec, xp as FloatArray, wHh as FloatArray, bIh as FloatArray | null, bHh as FloatArray | null,
      h0 as FloatArray, c0 as FloatArray | null, save, dtype, this.pinGemmB, this.recurrentGates());
  }

  recurrentBackward(spec: RecurrentSpec, saved: readonly Arr[], wHh: Arr, dy: Arr, needs: { wHh: boolean; bIh: boolean; bHh: boolean }, dtype: DType): RecurrentGradients<Arr> {
    return recurrentBackwardHost(spec, saved as FloatArray[], wHh as FloatArray, dy as FloatArray, needs, dtype, this.gemmOverwrite, this.pinGemmB, this.recurrentGates());
  }

  /** The gate loops of the fused recurrent kernels: JavaScript here; faster backends override it. */
  protected recurrentGates(): GateKernels {
    return jsGates;
  }

  /** this.gemm as a function value, for kernels written outside the class (fused/). */
  private readonly gemmOverwrite: Gemm = (transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc) =>
    this.gemm(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);

  /**
   * Holds op(B) for many products (the fused recurrent kernels' per-step products against W_hh; see PinnedGemm):
   * here Bᵀ is transposed once and each product is this kernel's GEMM; the wasm backend packs B into its GEMM's memory.
   */
  protected pinB(transB: boolean, k: number, n: number, b: FloatArray, bOff: number, ldb: number): PinnedGemm {
    return pinReference(transB, k, n, b, bOff, ldb);
  }

  /** this.pinB as a function value, for fused/. */
  private readonly pinGemmB: PinGemm = (transB, k, n, b, bOff, ldb) => this.pinB(transB, k, n, b, bOff, ldb);

  logSoftmaxBackward(y: Arr, dy: Arr, rows: number, cols: number, dtype: DType): Arr {
    const out = allocArray(dtype, rows * cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0;
      for (let j = 0; j < cols; j++) s += dy[o + j];
      for (let j = 0; j < cols; j++) out[o + j] = dy[o + j] - Math.exp(y[o + j]) * s;
    }
    return out;
  }
}

/** Copies (or adds) a strided box of `shape`: the innermost axis is the contiguous inner loop. */
function copyStrided(src: Arr, srcOff: number, srcStr: readonly number[], dst: Arr, dstOff: number,
  dstStr: readonly number[], shape: Shape, rank: number, add: boolean): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  if (rank === 0) {
    if (add) dst[dstOff] += src[srcOff]; else dst[dstOff] = src[srcOff];
    return;
  }
  const last = shape[rank - 1], ss = srcStr[rank - 1], ds = dstStr[rank - 1];
  const outer = n / last;
  const idx = new Array<number>(rank).fill(0);
  let so = srcOff, dO = dstOff;
  for (let r = 0; r < outer; r++) {
    if (add) for (let j = 0; j < last; j++) dst[dO + j * ds] += src[so + j * ss];
    else if (ss === 1 && ds === 1) dst.set(src.subarray(so, so + last), dO);
    else for (let j = 0; j < last; j++) dst[dO + j * ds] = src[so + j * ss];
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++; so += srcStr[d]; dO += dstStr[d];
      if (idx[d] < shape[d]) break;
      so -= srcStr[d] * shape[d]; dO -= dstStr[d] * shape[d]; idx[d] = 0;
    }
  }
}
