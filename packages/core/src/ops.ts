/*
 * The primitives. Each one sits in one place: its checks and shape rule, its kernel call, and its
 * backward rule (the closure handed to `record`). The set is small and closed (`Primitive`); every
 * other op (functional.ts) is composed from these and gets its gradient for free.
 *
 * Primitives beyond the obvious, and why:
 *  - tanh, sigmoid, relu: one pass forward and one fused pass backward instead of three or four
 *    composed ones; sigmoid composed as 1/(1+exp(-x)) also overflows exp for large negative x.
 *  - logSoftmax: numerically stable (max-shifted) in one kernel; softmax composes it.
 *    Composed from max/exp/sum/log it made five full passes over a [tokens, vocabulary] matrix.
 *  - softmaxCrossEntropy (what crossEntropy reduces): measured. Composed (log-softmax, the target picked by
 *    gathering from a [N·C, 1] view, neg, where) it wrote the whole [N, C] log-softmax, kept it for the
 *    backward, scattered the picked gradients into a zeroed [N·C] and ran the log-softmax backward over
 *    that: ~35% of W1's output layer by CPU profile (forward ~80 ms + backward ~85 ms CPU for its [400,
 *    10000] logits, loaded machine). Fused, the forward reads each row once while it is in cache and keeps
 *    two numbers per row; the backward writes (softmax − one-hot)·g in one pass. The kernels alone: ~50 ms
 *    each way with Math.exp (reference backend), ~9 ms each way with the wasm backend's vector exp
 *    (fused/softmax-ce-simd.ts); W1's whole training step went from ~430 to ~340 ms CPU. A backend without
 *    the kernels gets the composition (softmaxCrossEntropyComposed), which the tests check the fused one against.
 */
import { isGradEnabled, Tensor } from './tensor.js';
import type { BinaryOp, UnaryOp } from './backend.js';
import { isFloat } from './dtype.js';
import { LoomError, ShapeError, fmtShape } from './errors.js';
import { broadcastShapes, normAxes, normAxis, resolveShape, sameShape, sizeOf, type Shape } from './shape.js';

export type Primitive =
  | UnaryOp | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'where' | 'sum' | 'max' | 'expand'
  | 'matmul' | 'affine' | 'reshape' | 'permute' | 'slice' | 'concat' | 'gatherRows' | 'logSoftmax' | 'softmaxCrossEntropy'
  | 'recurrentSequence'; // fused/recurrent.ts

type Backward = (grad: Tensor, sinks: readonly unknown[]) => readonly (Tensor | null)[];

function record(op: Primitive, storage: unknown, shape: Shape, like: Tensor, inputs: readonly Tensor[], backward: Backward): Tensor {
  let needs = false;
  if (isGradEnabled()) for (const t of inputs) if (t.requiresGrad) { needs = true; break; }
  return new Tensor(storage, shape, like.dtype, like.backend, needs, needs ? { op, inputs, backward } : null);
}

function checkPair(op: string, a: Tensor, b: Tensor): void {
  if (a.backend !== b.backend) throw new LoomError(`${op}: operands live on different backends (${a.backend.name} and ${b.backend.name})`);
  if (a.dtype !== b.dtype) throw new LoomError(`${op}: operands have different dtypes (${a.dtype} and ${b.dtype})`);
}

function checkFloat(op: string, arg: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new LoomError(`${op}: argument '${arg}' must be a float tensor, got ${t.dtype}`);
}

/** A number becomes a scalar tensor of the other operand's dtype and backend. */
function lift(x: Tensor | number, like: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  return new Tensor(like.backend.fromArray(like.dtype, [x]), [], like.dtype, like.backend);
}

/** Sums a broadcast gradient back down to `shape` (the backward of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}

// ---- elementwise unary --------------------------------------------------------------------------

function unary(op: UnaryOp, x: Tensor): Tensor {
  checkFloat(op, 'x', x);
  const y = x.backend.unary(op, x.storage, x.dtype);
  const out: Tensor = record(op, y, x.shape, x, [x], (g) => [
    new Tensor(x.backend.unaryBackward(op, x.storage, out.storage, g.storage, x.dtype), x.shape, x.dtype, x.backend),
  ]);
  return out;
}

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);

// ---- elementwise binary, with broadcasting -----------------------------------------------------

function rawBinary(op: BinaryOp, a: Tensor, b: Tensor, shape: Shape): Tensor {
  return new Tensor(a.backend.binary(op, a.storage, a.shape, b.storage, b.shape, shape, a.dtype), shape, a.dtype, a.backend);
}

function binary(op: 'add' | 'sub' | 'mul' | 'div' | 'pow', ax: Tensor | number, bx: Tensor | number): Tensor {
  const a = lift(ax, bx instanceof Tensor ? bx : (ax as Tensor));
  const b = lift(bx, a);
  checkPair(op, a, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const storage = a.backend.binary(op, a.storage, a.shape, b.storage, b.shape, shape, a.dtype);
  const out: Tensor = record(op, storage, shape, a, [a, b], (g) => {
    const da = a.requiresGrad, db = b.requiresGrad;
    switch (op) {
      case 'add':
        return [da ? sumTo(g, a.shape) : null, db ? sumTo(g, b.shape) : null];
      case 'sub':
        return [da ? sumTo(g, a.shape) : null, db ? sumTo(neg(g), b.shape) : null];
      case 'mul':
        return [da ? sumTo(mul(g, b), a.shape) : null, db ? sumTo(mul(g, a), b.shape) : null];
      case 'div':
        return [da ? sumTo(div(g, b), a.shape) : null, db ? sumTo(neg(div(mul(g, out), b)), b.shape) : null];
      case 'pow':
        // d(a^b)/da = b·a^(b-1); d(a^b)/db = a^b·log(a)
        return [
          da ? sumTo(mul(g, mul(b, pow(a, sub(b, 1)))), a.shape) : null,
          db ? sumTo(mul(g, mul(out, log(a))), b.shape) : null,
        ];
    }
  });
  return out;
}

export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary('add', a, b);
export const sub = (a: Tensor | number, b: Tensor | number): Tensor => binary('sub', a, b);
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary('mul', a, b);
export const div = (a: Tensor | number, b: Tensor | number): Tensor => binary('div', a, b);
export const pow = (a: Tensor | number, b: Tensor | number): Tensor => binary('pow', a, b);

/** Comparisons give 0/1 in the operands' dtype and have no gradient. */
function compare(op: 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne', ax: Tensor | number, bx: Tensor | number): Tensor {
  const a = lift(ax, bx instanceof Tensor ? bx : (ax as Tensor));
  const b = lift(bx, a);
  checkPair(op, a, b);
  return rawBinary(op, a, b, broadcastShapes(op, a.shape, b.shape));
}
export const lt = (a: Tensor | number, b: Tensor | number): Tensor => compare('lt', a, b);
export const le = (a: Tensor | number, b: Tensor | number): Tensor => compare('le', a, b);
export const gt = (a: Tensor | number, b: Tensor | number): Tensor => compare('gt', a, b);
export const ge = (a: Tensor | number, b: Tensor | number): Tensor => compare('ge', a, b);
export const eq = (a: Tensor | number, b: Tensor | number): Tensor => compare('eq', a, b);
export const ne = (a: Tensor | number, b: Tensor | number): Tensor => compare('ne', a, b);

/** cond ? a : b, broadcasting all three; cond is any tensor (non-zero means true), a and b may be numbers. */
export function where(cond: Tensor, ax: Tensor | number, bx: Tensor | number): Tensor {
  const a = lift(ax, bx instanceof Tensor ? bx : ax instanceof Tensor ? ax : cond);
  const b = lift(bx, a);
  checkPair('where', a, b);
  if (cond.backend !== a.backend) throw new LoomError(`where: 'cond' lives on backend ${cond.backend.name}, the values on ${a.backend.name}`);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape, ["'cond'", "'a'"]), b.shape, ["'cond' and 'a' together", "'b'"]);
  const storage = a.backend.where(cond.storage, cond.shape, a.storage, a.shape, b.storage, b.shape, shape, a.dtype);
  return record('where', storage, shape, a, [a, b], (g) => {
    const zero = lift(0, g);
    return [
      a.requiresGrad ? sumTo(where(cond, g, zero), a.shape) : null,
      b.requiresGrad ? sumTo(where(cond, zero, g), b.shape) : null,
    ];
  });
}

/** Broadcasts x to `shape` (materialised). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes('expand', x.shape, shape, ["'x'", "'shape'"]);
  if (!sameShape(target, shape)) throw new ShapeError(`expand: cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  if (sameShape(x.shape, shape)) return x;
  const zero = lift(0, x);
  const storage = x.backend.binary('add', x.storage, x.shape, zero.storage, zero.shape, shape, x.dtype);
  return record('expand', storage, [...shape], x, [x], (g) => [sumTo(g, x.shape)]);
}

// ---- reductions ------------------------------------------------------------------------------------

function reduceAxes(op: 'sum' | 'max', x: Tensor, axes: number[], keepDims: boolean): { storage: unknown; keepShape: number[]; outShape: number[] } {
  let storage = x.storage;
  const shape = [...x.shape];
  // One axis at a time, viewing the shape as [outer, axis, inner]; the last axis first keeps inner small.
  for (let i = axes.length - 1; i >= 0; i--) {
    const ax = axes[i];
    const outer = sizeOf(shape.slice(0, ax)), inner = sizeOf(shape.slice(ax + 1));
    storage = x.backend.reduce(op, storage, outer, shape[ax], inner, x.dtype);
    shape[ax] = 1;
  }
  const outShape = keepDims ? [...shape] : shape.filter((_, i) => !axes.includes(i));
  return { storage, keepShape: shape, outShape };
}

export function sum(x: Tensor, axesArg?: number | readonly number[], keepDims = false): Tensor {
  const axes = normAxes('sum', axesArg, x.rank);
  const { storage, keepShape, outShape } = reduceAxes('sum', x, axes, keepDims);
  return record('sum', storage, outShape, x, [x], (g) => [expand(reshape(g, keepShape), x.shape)]);
}

/** Maximum over axes. The gradient is shared equally among tied maxima (as torch.amax). */
export function max(x: Tensor, axesArg?: number | readonly number[], keepDims = false): Tensor {
  checkFloat('max', 'x', x);
  const axes = normAxes('max', axesArg, x.rank);
  if (axes.some((a) => x.shape[a] === 0)) throw new ShapeError(`max: cannot reduce over an empty axis of shape ${fmtShape(x.shape)}`);
  const { storage, keepShape, outShape } = reduceAxes('max', x, axes, keepDims);
  const out: Tensor = record('max', storage, outShape, x, [x], (g) => {
    const m = reshape(out.detach(), keepShape);
    const mask = eq(x, m);
    const count = sum(mask, axes, true);
    return [div(mul(mask, reshape(g, keepShape)), count)];
  });
  return out;
}

// ---- matrix products -------------------------------------------------------------------------------

/**
 * op(a) · op(b) over the last two axes, with leading (batch) axes broadcast. transA/transB read a or b
 * transposed without copying: backward uses them, and they run as fast as plain products.
 */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  checkPair('matmul', a, b);
  checkFloat('matmul', 'a', a);
  if (a.rank < 2 || b.rank < 2) {
    throw new ShapeError(`matmul: both arguments need at least 2 dimensions, got 'a' ${fmtShape(a.shape)} and 'b' ${fmtShape(b.shape)}`);
  }
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar, k = transA ? ar : ac;
  const kb = transB ? bc : br, n = transB ? br : bc;
  if (k !== kb) {
    throw new ShapeError(`matmul: inner dimensions differ: 'a' ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} has ${k}, 'b' ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''} has ${kb}`);
  }
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const batchShape = broadcastShapes('matmul', aBatch, bBatch, ["'a' batch axes", "'b' batch axes"], ` ('a' ${fmtShape(a.shape)}, 'b' ${fmtShape(b.shape)})`);
  const batch = sizeOf(batchShape);
  const outShape = [...batchShape, m, n];
  let storage: unknown;
  if (sameShape(aBatch, bBatch) || (sizeOf(aBatch) === batch && sizeOf(bBatch) === 1) || (sizeOf(bBatch) === batch && sizeOf(aBatch) === 1)) {
    const aStride = sizeOf(aBatch) === batch && batch > 1 ? m * k : 0;
    const bStride = sizeOf(bBatch) === batch && batch > 1 ? k * n : 0;
    if (bStride === 0 && !transA && batch > 1) {
      // A stack of rows times one matrix is a single product: fold the batch into m.
      storage = a.backend.matmul(a.storage, b.storage, 1, batch * m, n, k, false, transB, 0, 0, a.dtype);
    } else {
      storage = a.backend.matmul(a.storage, b.storage, batch, m, n, k, transA, transB, aStride, bStride, a.dtype);
    }
  } else {
    // Partial broadcasting of batch axes: materialise both to the full batch shape.
    return matmul(expand(a, [...batchShape, ar, ac]), expand(b, [...batchShape, br, bc]), transA, transB);
  }
  return record('matmul', storage, outShape, a, [a, b], (g, sinks) => matmulGrads(a, b, transA, transB, k, n, g, sinks[1]));
}

/** matmul's backward: the gradients of a and b for out = op(a)·op(b) (k: the inner size, n: out's columns). */
function matmulGrads(a: Tensor, b: Tensor, transA: boolean, transB: boolean, k: number, n: number, g: Tensor, sinkB: unknown): [Tensor | null, Tensor | null] {
  let ga: Tensor | null = null, gb: Tensor | null = null;
  if (a.requiresGrad) {
    ga = transA ? matmul(b, g, transB, true) : matmul(g, b, false, !transB);
    ga = sumTo(ga, a.shape);
  }
  const be = b.backend;
  if (b.requiresGrad && sinkB != null && be.matmulAddInto && b.rank === 2 && (a.rank === 2 || !transA)) {
    // A weight's gradient straight into its .grad: no [out, in] temporary, no extra pass to add it.
    const rows = a.size / k; // a's rows, the batch folded in (the condition leaves transA to a 2-D a)
    if (transB) be.matmulAddInto(sinkB, g.storage, a.storage, n, k, rows, true, transA, b.dtype);
    else be.matmulAddInto(sinkB, a.storage, g.storage, k, n, rows, !transA, false, b.dtype);
  } else if (b.requiresGrad) {
    if (b.rank === 2 && a.rank > 2 && !transA) {
      // b was shared by every batch entry: one product over the folded batch instead of many plus a sum.
      const a2 = reshape(a, [-1, k]), g2 = reshape(g, [-1, n]);
      gb = transB ? matmul(g2, a2, true, false) : matmul(a2, g2, true, false);
    } else {
      gb = transB ? matmul(g, a, true, transA) : matmul(a, g, !transA, false);
      gb = sumTo(gb, b.shape);
    }
  }
  return [ga, gb];
}

/**
 * x · weightᵀ + bias over x's last axis (x [..., in], weight [out, in], bias [out]): PyTorch's F.linear with a
 * bias (functional.ts `linear` calls it).
 * A primitive rather than matmul then add because that add was a second full pass over the product and a
 * second array of its size: ~7% of a WikiText-2 worker's CPU profile (logits [200, 33278] per worker). The
 * backend adds the bias as each tile of the product is stored, after the product, so the values are bitwise
 * those of matmul then add; a backend without `affine` gets exactly that composition. The backward is
 * matmul's, plus the bias gradient summed over rows as add's backward does it.
 */
export function affine(x: Tensor, weight: Tensor, bias: Tensor): Tensor {
  checkPair('affine', x, weight);
  checkPair('affine', x, bias);
  checkFloat('affine', 'x', x);
  if (x.rank < 2) throw new ShapeError(`affine: 'x' needs at least 2 dimensions [..., in], got ${fmtShape(x.shape)}`);
  if (weight.rank !== 2) throw new ShapeError(`affine: 'weight' must be 2-D [out, in], got ${fmtShape(weight.shape)}`);
  const [n, k] = weight.shape;
  if (x.shape[x.rank - 1] !== k) {
    throw new ShapeError(`affine: 'x' ${fmtShape(x.shape)} has ${x.shape[x.rank - 1]} features, 'weight' ${fmtShape(weight.shape)} expects ${k}`);
  }
  if (bias.rank !== 1 || bias.shape[0] !== n) {
    throw new ShapeError(`affine: 'bias' must be [${n}] for 'weight' ${fmtShape(weight.shape)}, got ${fmtShape(bias.shape)}`);
  }
  const be = x.backend;
  if (!be.affine) return add(matmul(x, weight, false, true), bias);
  const lead = x.shape.slice(0, -1); // the rows: every axis of x but the last, folded
  const outShape = [...lead, n];
  const rows = sizeOf(lead);
  const storage = be.affine(x.storage, weight.storage, bias.storage, rows, n, k, x.dtype);
  return record('affine', storage, outShape, x, [x, weight, bias], (g, sinks) => {
    const [gx, gw] = matmulGrads(x, weight, false, true, k, n, g, sinks[1]);
    return [gx, gw, bias.requiresGrad ? sumTo(g, bias.shape) : null];
  });
}

// ---- movement --------------------------------------------------------------------------------------

/** A new shape over the same values (no copy). One dimension may be -1. */
export function reshape(x: Tensor, shapeArg: readonly number[]): Tensor {
  const shape = resolveShape('reshape', shapeArg, x.size, x.shape);
  if (sameShape(shape, x.shape)) return x;
  return record('reshape', x.storage, shape, x, [x], (g) => [reshape(g, x.shape)]);
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    throw new ShapeError(`permute: [${perm.join(', ')}] is not a permutation of the ${x.rank} axes of ${fmtShape(x.shape)}`);
  }
  if (perm.every((p, i) => p === i)) return x;
  const shape = perm.map((p) => x.shape[p]);
  const storage = x.backend.permute(x.storage, x.shape, perm, x.dtype);
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => (inverse[p] = i));
  return record('permute', storage, shape, x, [x], (g) => [permute(g, inverse)]);
}

/** The box [starts, ends) along every axis (negative indices count from the end). */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  if (starts.length !== x.rank || ends.length !== x.rank) {
    throw new ShapeError(`slice: 'starts' [${starts.join(', ')}] and 'ends' [${ends.join(', ')}] must have one entry per axis of 'x' ${fmtShape(x.shape)}`);
  }
  const s = starts.map((v, i) => (v < 0 ? v + x.shape[i] : v));
  const e = ends.map((v, i) => (v < 0 ? v + x.shape[i] : Math.min(v, x.shape[i])));
  for (let i = 0; i < x.rank; i++) {
    if (!(Number.isInteger(s[i]) && Number.isInteger(e[i]) && 0 <= s[i] && s[i] <= e[i] && e[i] <= x.shape[i])) {
      throw new ShapeError(`slice: axis ${i}: range [${starts[i]}, ${ends[i]}) of 'starts' [${starts.join(', ')}] and 'ends' [${ends.join(', ')}] is outside a dimension of size ${x.shape[i]} of 'x' ${fmtShape(x.shape)}`);
    }
  }
  const shape = s.map((v, i) => e[i] - v);
  if (sameShape(shape, x.shape)) return x;
  const storage = x.backend.sliceCopy(x.storage, x.shape, s, shape, x.dtype);
  return record('slice', storage, shape, x, [x], (g) => {
    const dx = x.backend.alloc(x.dtype, x.size);
    x.backend.sliceAddInto(dx, x.shape, g.storage, g.shape, s, x.dtype);
    return [new Tensor(dx, x.shape, x.dtype, x.backend)];
  });
}

export function concat(xs: readonly Tensor[], axisArg = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: needs at least one tensor');
  const first = xs[0];
  const axis = normAxis('concat', axisArg, first.rank);
  let total = 0;
  xs.forEach((t, i) => {
    checkPair('concat', first, t);
    if (t.rank !== first.rank || t.shape.some((d, j) => j !== axis && d !== first.shape[j])) {
      throw new ShapeError(`concat: 'xs[${i}]' ${fmtShape(t.shape)} does not match 'xs[0]' ${fmtShape(first.shape)} on the axes other than axis ${axisArg}`);
    }
    total += t.shape[axis];
  });
  if (xs.length === 1) return first;
  const shape = [...first.shape];
  shape[axis] = total;
  const storage = first.backend.alloc(first.dtype, sizeOf(shape));
  const starts: number[][] = [];
  let at = 0;
  for (const t of xs) {
    const st = new Array<number>(shape.length).fill(0);
    st[axis] = at;
    starts.push(st);
    first.backend.sliceAddInto(storage, shape, t.storage, t.shape, st, first.dtype);
    at += t.shape[axis];
  }
  return record('concat', storage, shape, first, xs, (g) =>
    xs.map((t, i) => (t.requiresGrad ? slice(g, starts[i], starts[i].map((v, j) => v + t.shape[j])) : null)));
}

/** Rows of a 2-D table picked by int32 indices of any shape: out shape = [...idx.shape, cols]. */
export function gatherRows(table: Tensor, idx: Tensor): Tensor {
  if (table.rank !== 2) throw new ShapeError(`gatherRows: 'table' must be 2-D, got ${fmtShape(table.shape)}`);
  if (idx.dtype !== 'int32') throw new LoomError(`gatherRows: 'indices' must be int32, got ${idx.dtype}`);
  const [rows, cols] = table.shape;
  const ids = idx.data;
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < rows)) {
      throw new ShapeError(`gatherRows: 'indices' ${fmtShape(idx.shape)} holds ${ids[i]} at position ${i}, out of range for 'table' ${fmtShape(table.shape)} (${rows} rows)`);
    }
  }
  const storage = table.backend.gatherRows(table.storage, cols, idx.storage, idx.size, table.dtype);
  return record('gatherRows', storage, [...idx.shape, cols], table, [table], (g, sinks) => {
    if (sinks[0] != null) {
      // The table's gradient straight into its .grad: no zero-filled [rows, cols] temporary, no pass to add it.
      table.backend.scatterAddRowsInto(sinks[0], cols, idx.storage, idx.size, g.storage, table.dtype);
      return [null];
    }
    const dt = table.backend.alloc(table.dtype, table.size);
    table.backend.scatterAddRowsInto(dt, cols, idx.storage, idx.size, g.storage, table.dtype);
    return [new Tensor(dt, table.shape, table.dtype, table.backend)];
  });
}

// ---- fused for stability ---------------------------------------------------------------------------

export function logSoftmax(x: Tensor, axisArg = -1): Tensor {
  checkFloat('logSoftmax', 'x', x);
  const axis = normAxis('logSoftmax', axisArg, x.rank);
  if (axis !== x.rank - 1) {
    // Move the axis last, apply, move it back: the kernel works on rows.
    const perm = [...Array(x.rank).keys()].filter((i) => i !== axis).concat(axis);
    const inv = new Array<number>(x.rank);
    perm.forEach((p, i) => (inv[p] = i));
    return permute(logSoftmax(permute(x, perm), -1), inv);
  }
  const cols = x.shape[axis], rows = x.size / Math.max(cols, 1);
  const storage = x.backend.logSoftmax(x.storage, rows, cols, x.dtype);
  const out: Tensor = record('logSoftmax', storage, x.shape, x, [x], (g) => [
    new Tensor(x.backend.logSoftmaxBackward(out.storage, g.storage, rows, cols, x.dtype), x.shape, x.dtype, x.backend),
  ]);
  return out;
}

/**
 * The cross-entropy of each row: logits [N, C] and int32 targets [N] → losses [N], losses[i] =
 * logsumexp(logits[i, :]) − logits[i, targets[i]] (that is, −log softmax at the target), and 0 with no
 * gradient where targets[i] === ignoreIndex (null: none ignored). crossEntropy (functional.ts) reduces these.
 */
export function softmaxCrossEntropy(logits: Tensor, targetsArg: Tensor, ignoreIndex: number | null = null): Tensor {
  const op = 'softmaxCrossEntropy';
  const counted = checkSoftmaxCrossEntropy(op, logits, targetsArg, ignoreIndex);
  const be = logits.backend;
  const targets = onBackendOf(logits, targetsArg);
  if (!be.softmaxCrossEntropy || !be.softmaxCrossEntropyBackward) return composedRows(logits, targets, ignoreIndex, counted);
  const [N, C] = logits.shape, dtype = logits.dtype;
  const { losses, saved } = be.softmaxCrossEntropy(logits.storage, targets.storage, N, C, ignoreIndex, dtype);
  return record(op, losses, [N], logits, [logits], (g) => [
    new Tensor(be.softmaxCrossEntropyBackward!(logits.storage, targets.storage, saved, g.storage, N, C, ignoreIndex, dtype), logits.shape, dtype, be),
  ]);
}

/** softmaxCrossEntropy composed from logSoftmax, gatherRows and where: the fallback, and the tests' reference. */
export function softmaxCrossEntropyComposed(logits: Tensor, targets: Tensor, ignoreIndex: number | null = null): Tensor {
  return composedRows(logits, targets, ignoreIndex, checkSoftmaxCrossEntropy('softmaxCrossEntropyComposed', logits, targets, ignoreIndex));
}

function composedRows(logits: Tensor, targets: Tensor, ignoreIndex: number | null, counted: number): Tensor {
  const [N, C] = logits.shape, be = logits.backend;
  const t = targets.data;
  const flatIdx = new Int32Array(N);
  const keep = new Array<number>(N);
  for (let i = 0; i < N; i++) {
    const ignored = t[i] === ignoreIndex;
    flatIdx[i] = ignored ? i * C : i * C + t[i]; // an ignored row picks any valid element; where() drops it
    keep[i] = ignored ? 0 : 1;
  }
  const logp = reshape(logSoftmax(logits, -1), [N * C, 1]);
  const picked = reshape(gatherRows(logp, new Tensor(be.fromArray('int32', flatIdx), [N], 'int32', be)), [N]);
  const losses = neg(picked);
  // Select rather than multiply by the mask: an ignored row's picked value may be -Infinity (masked logits),
  // and Infinity · 0 would make the whole loss NaN.
  return counted < N ? where(new Tensor(be.fromArray(logits.dtype, keep), [N], logits.dtype, be), losses, 0) : losses;
}

/** Class indices may come from any backend (they are read on the host, as crossEntropy always has): copied
 *  to the logits' backend when they live elsewhere. */
function onBackendOf(logits: Tensor, targets: Tensor): Tensor {
  if (targets.backend === logits.backend) return targets;
  return new Tensor(logits.backend.fromArray('int32', targets.data), targets.shape, 'int32', logits.backend);
}

/** Checks softmaxCrossEntropy's arguments; returns the number of rows not ignored. */
function checkSoftmaxCrossEntropy(op: string, logits: Tensor, targets: Tensor, ignoreIndex: number | null): number {
  checkFloat(op, 'logits', logits);
  if (logits.rank !== 2) throw new ShapeError(`${op}: 'logits' must be 2-D [N, C], got ${fmtShape(logits.shape)}`);
  if (targets.dtype !== 'int32') throw new LoomError(`${op}: 'targets' must be int32 class indices, got ${targets.dtype}`);
  const [N, C] = logits.shape;
  if (targets.rank !== 1 || targets.shape[0] !== N) {
    throw new ShapeError(`${op}: 'targets' must be [${N}] (one per row of 'logits' ${fmtShape(logits.shape)}), got ${fmtShape(targets.shape)}`);
  }
  const t = targets.data;
  let counted = 0;
  for (let i = 0; i < N; i++) {
    const ti = t[i];
    if (ti === ignoreIndex) continue;
    if (!(ti >= 0 && ti < C)) {
      throw new ShapeError(`${op}: 'targets' ${fmtShape(targets.shape)} holds ${ti} at position ${i}, out of range for 'logits' ${fmtShape(logits.shape)} (${C} classes)`);
    }
    counted++;
  }
  return counted;
}

// ---- composed (here because Tensor's methods use them; the rest is in functional.ts) --------------

export function mean(x: Tensor, axesArg?: number | readonly number[], keepDims = false): Tensor {
  checkFloat('mean', 'x', x); // an int32 mean would be truncated by the integer division
  const axes = normAxes('mean', axesArg, x.rank);
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  return div(sum(x, axes, keepDims), count);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = [...Array(x.rank).keys()];
  const i = normAxis('transpose', a, x.rank), j = normAxis('transpose', b, x.rank);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

export function softmax(x: Tensor, axis = -1): Tensor {
  return exp(logSoftmax(x, axis));
}

export function fullLike(x: Tensor, value: number): Tensor {
  const s = x.backend.alloc(x.dtype, x.size);
  if (value !== 0) x.backend.fill(s, x.dtype, value);
  return new Tensor(s, x.shape, x.dtype, x.backend);
}
