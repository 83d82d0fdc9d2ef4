import type { DType, TypedArray } from './dtype.js';
import type { Shape } from './shape.js';
import type { RecurrentGradients, RecurrentSaved, RecurrentSpec } from './fused/recurrent-kernel.js';

/**
 * The backend interface: storage plus the kernels the primitives call. Nothing else in Loom touches
 * tensor memory. `S` is the backend's storage handle: a host TypedArray for the CPU backends; a
 * device buffer for a GPU backend. Kernels never see autograd; shapes are already checked by the op.
 *
 * Kernels return fresh storage, except the few named "...InPlace"/"...Into" which write into `dst`
 * (gradient accumulation and the backward of slicing and gathering).
 */
export interface Backend<S = any> {
  readonly name: string;

  // ---- storage ----
  alloc(dtype: DType, size: number): S; // zero-filled
  fromArray(dtype: DType, values: ArrayLike<number>): S;
  /** Host view of the storage; CPU backends return the storage itself (do not mutate it). */
  read(s: S, dtype: DType): TypedArray;
  fill(s: S, dtype: DType, value: number): void;
  cast(s: S, from: DType, to: DType): S;
  /** dst += src, elementwise over equal sizes (gradient accumulation). */
  addInPlace(dst: S, src: S, dtype: DType): void;

  // ---- elementwise ----
  unary(op: UnaryOp, x: S, dtype: DType): S;
  /** dx for y = op(x), given x, y and dy; fused so backward is one pass. */
  unaryBackward(op: UnaryOp, x: S, y: S, dy: S, dtype: DType): S;
  /** Elementwise with NumPy broadcasting of a and b to outShape. */
  binary(op: BinaryOp, a: S, aShape: Shape, b: S, bShape: Shape, outShape: Shape, dtype: DType): S;
  /** cond ? a : b, all three broadcast to outShape. */
  where(cond: S, condShape: Shape, a: S, aShape: Shape, b: S, bShape: Shape, outShape: Shape, dtype: DType): S;

  // ---- reductions: one axis of a shape viewed as [outer, axisLen, inner] ----
  reduce(op: ReduceOp, x: S, outer: number, axisLen: number, inner: number, dtype: DType): S;

  // ---- products: C[batch] = op(A[batch]) · op(B[batch]); a batch stride of 0 broadcasts ----
  matmul(
    a: S, b: S, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number, dtype: DType,
  ): S;

  // ---- movement ----
  permute(x: S, shape: Shape, perm: readonly number[], dtype: DType): S;
  /** Copies the box starting at `starts` with extent outShape out of x. */
  sliceCopy(x: S, shape: Shape, starts: readonly number[], outShape: Shape, dtype: DType): S;
  /** dst[box at starts] += src (backward of slice, and concat's forward into a zeroed dst). */
  sliceAddInto(dst: S, dstShape: Shape, src: S, srcShape: Shape, starts: readonly number[], dtype: DType): void;
  /** out[i, :] = table[idx[i], :] (embedding lookup); idx is int32 storage of length n. */
  gatherRows(table: S, cols: number, idx: S, n: number, dtype: DType): S;
  /** dst[idx[i], :] += src[i, :] (backward of gatherRows; repeated indices accumulate). */
  scatterAddRowsInto(dst: S, cols: number, idx: S, n: number, src: S, dtype: DType): void;
  /**
   * y[m, n] = x[m, k]·w[n, k]ᵀ + bias[n] on every row, the bias added after the product (so bitwise the product
   * followed by a broadcast add): the forward of `affine` (ops.ts) without a second pass over y. Optional:
   * without it affine is matmul then add.
   */
  affine?(x: S, w: S, bias: S, m: number, n: number, k: number, dtype: DType): S;
  /**
   * dst[m, n] += op(a)·op(b), one product (a gradient added straight into a leaf's .grad: matmul's backward
   * with a sink). Optional: without it the gradient is computed into fresh storage and added.
   */
  matmulAddInto?(dst: S, a: S, b: S, m: number, n: number, k: number, transA: boolean, transB: boolean, dtype: DType): void;

  // ---- fused, for numerical stability and speed (see ops.ts) ----
  logSoftmax(x: S, rows: number, cols: number, dtype: DType): S;
  logSoftmaxBackward(y: S, dy: S, rows: number, cols: number, dtype: DType): S;

  // ---- fused softmax cross-entropy (see ops.ts, softmaxCrossEntropy). Optional: a backend without them gets
  // the same result composed from logSoftmax, gatherRows and where. ----
  /**
   * Rows of logits [rows, cols] against int32 targets [rows]: losses[r] = logsumexp(x[r, :]) − x[r, targets[r]],
   * and 0 where targets[r] === ignoreIndex (null: no index is ignored). `saved` is whatever the backward needs
   * besides the logits and targets (opaque to the op; the CPU backends keep each row's max and Σ exp).
   */
  softmaxCrossEntropy?(logits: S, targets: S, rows: number, cols: number, ignoreIndex: number | null, dtype: DType): { losses: S; saved: S };
  /** dlogits[r, :] = (softmax(x[r, :]) − onehot(targets[r]))·dLosses[r] in one pass; ignored rows get 0. */
  softmaxCrossEntropyBackward?(logits: S, targets: S, saved: S, dLosses: S, rows: number, cols: number, ignoreIndex: number | null, dtype: DType): S;

  // ---- fused recurrent layer-direction over a whole sequence (see fused/recurrent.ts) ----
  recurrentForward(spec: RecurrentSpec, xp: S, wHh: S, bIh: S | null, bHh: S | null, h0: S, c0: S | null, save: boolean, dtype: DType): { y: S; saved: RecurrentSaved<S> };
  recurrentBackward(spec: RecurrentSpec, saved: RecurrentSaved<S>, wHh: S, dy: S, needs: { wHh: boolean; bIh: boolean; bHh: boolean }, dtype: DType): RecurrentGradients<S>;

  // ---- optional capabilities: absent, the backend is a host backend storing all three dtypes ----
  /** The dtypes this backend stores (a backend refuses the others by name); absent: float32, float64, int32. */
  readonly dtypes?: readonly DType[];
  /**
   * false for a backend whose storage is not host memory (a device backend, e.g. @loom/backend-tfjs): read()
   * returns a copy, values go in with write(), and parameters cannot be views of a flat host buffer, so
   * `mirrorParameters` (flat.ts) copies them to and from one instead. Absent: true.
   */
  readonly hostStorage?: boolean;
  /** Overwrites s (of values.length elements) with host values: how values reach a backend without host storage. */
  write?(s: S, dtype: DType, values: ArrayLike<number>): void;
}

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'tanh' | 'sigmoid' | 'relu' | 'abs';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne';
export type ReduceOp = 'sum' | 'max';
