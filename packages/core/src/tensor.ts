import type { Backend } from './backend.js';
import { getBackend } from './backends/registry.js';
import { outsidePool } from './storage-pool.js';
import { allocArray, isFloat, type DType, type TypedArray } from './dtype.js';
import { LoomError, ShapeError, fmtShape } from './errors.js';
import * as ops from './ops.js';
import { sizeOf, type Shape } from './shape.js';

/**
 * How a tensor was made: the primitive's name, its inputs, and the rule that turns the output's
 * gradient into the inputs' gradients (null for an input that needs none). Written beside each
 * primitive in ops.ts.
 */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /**
   * The gradients of the inputs given the output's. `sinks[j]`, when not null, is the storage of input j's
   * `.grad` (a leaf that already has one): a rule may add input j's gradient straight into it and return
   * null for j, saving a temporary and a pass (matmul's weight gradient, gatherRows' table). Rules that
   * ignore sinks are always right.
   */
  readonly backward: (grad: Tensor, sinks: readonly unknown[]) => readonly (Tensor | null)[];
}

let gradEnabled = true;

/** Runs fn without recording the graph (evaluation, optimizer updates, backward rules). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * An n-dimensional array in row-major order, stored by a backend. Tensors are immutable values
 * (every op makes a new one); parameters are the exception, updated in place by optimizers through
 * `data` on host backends.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly backend: Backend;
  /** Backend storage; for host backends, a TypedArray of `size` elements. */
  storage: unknown;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  node: GradNode | null;

  constructor(storage: unknown, shape: Shape, dtype: DType, backend: Backend, requiresGrad = false, node: GradNode | null = null) {
    this.storage = storage;
    this.shape = shape;
    this.dtype = dtype;
    this.backend = backend;
    this.requiresGrad = requiresGrad;
    this.node = node;
  }

  get size(): number {
    return sizeOf(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }

  /** The values as a host typed array. On host backends this is the storage itself: treat it as read-only
   *  unless the tensor is a parameter you are updating under noGrad. */
  get data(): TypedArray {
    return this.backend.read(this.storage, this.dtype);
  }

  /** A copy of the values. */
  toArray(): TypedArray {
    return this.data.slice();
  }

  /** Nested JavaScript arrays, like torch's tolist(). */
  tolist(): unknown {
    const data = this.data;
    const build = (axis: number, offset: number): unknown => {
      if (axis === this.rank) return data[offset];
      const stride = sizeOf(this.shape.slice(axis + 1));
      return Array.from({ length: this.shape[axis] }, (_, i) => build(axis + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  item(): number {
    if (this.size !== 1) throw new ShapeError(`item: expected a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return this.data[0];
  }

  /** A tensor sharing this one's values, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, this.dtype, this.backend, false, null);
  }

  /** Marks a leaf as trainable (returns this, for chaining). */
  requireGrad(flag = true): this {
    if (flag && !isFloat(this.dtype)) throw new LoomError(`requireGrad: only float tensors can require gradients, got ${this.dtype}`);
    this.requiresGrad = flag;
    return this;
  }

  /**
   * Reverse-mode differentiation from this tensor. Gradients of leaves that require them are
   * accumulated into `.grad` (added, not replaced, as in PyTorch). The graph is released afterwards.
   */
  backward(gradient?: Tensor): void {
    if (!this.requiresGrad) throw new LoomError('backward: this tensor does not require grad (no input that requires grad was used to compute it)');
    if (!gradient && this.size !== 1) {
      throw new ShapeError(`backward: a gradient is needed for a non-scalar output of shape ${fmtShape(this.shape)}`);
    }
    const seed = gradient ?? ops.fullLike(this, 1);
    if (gradient && gradient.size !== this.size) {
      throw new ShapeError(`backward: gradient of shape ${fmtShape(gradient.shape)} does not match output shape ${fmtShape(this.shape)}`);
    }
    const order = topologicalOrder(this);
    const grads = new Map<Tensor, Tensor>([[this, seed.shape === this.shape ? seed : ops.reshape(seed, this.shape)]]);
    noGrad(() => {
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i];
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        const node = t.node;
        if (!node) {
          accumulateLeafGrad(t, g);
          continue;
        }
        const inputGrads = node.backward(g, node.inputs.map(sinkOf));
        for (let j = 0; j < node.inputs.length; j++) {
          const input = node.inputs[j], ig = inputGrads[j];
          if (!ig || !input.requiresGrad) continue;
          const prev = grads.get(input);
          grads.set(input, prev ? ops.add(prev, ig) : ig);
        }
        // Release the graph (and the values its rules saved), as PyTorch does. The tensor keeps a marker
        // rather than no node, so that it is not mistaken for a leaf by a later backward through it.
        t.node = releasedNode(node.op);
      }
    });
  }

  toString(): string {
    return formatTensor(this);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // ---- method forms of the ops (see ops.ts and functional.ts for the rules) ----
  add(o: Tensor | number): Tensor { return ops.add(this, o); }
  sub(o: Tensor | number): Tensor { return ops.sub(this, o); }
  mul(o: Tensor | number): Tensor { return ops.mul(this, o); }
  div(o: Tensor | number): Tensor { return ops.div(this, o); }
  pow(o: Tensor | number): Tensor { return ops.pow(this, o); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  relu(): Tensor { return ops.relu(this); }
  abs(): Tensor { return ops.abs(this); }
  sum(axes?: number | number[], keepDims = false): Tensor { return ops.sum(this, axes, keepDims); }
  mean(axes?: number | number[], keepDims = false): Tensor { return ops.mean(this, axes, keepDims); }
  max(axes?: number | number[], keepDims = false): Tensor { return ops.max(this, axes, keepDims); }
  matmul(o: Tensor): Tensor { return ops.matmul(this, o); }
  reshape(shape: readonly number[]): Tensor { return ops.reshape(this, shape); }
  permute(perm: readonly number[]): Tensor { return ops.permute(this, perm); }
  transpose(a = -2, b = -1): Tensor { return ops.transpose(this, a, b); }
  slice(starts: readonly number[], ends: readonly number[]): Tensor { return ops.slice(this, starts, ends); }
  softmax(axis = -1): Tensor { return ops.softmax(this, axis); }
  logSoftmax(axis = -1): Tensor { return ops.logSoftmax(this, axis); }
}

/** Post-order of the graph below `root` (inputs before the tensors made from them), iteratively so that
 *  long unrolled sequences cannot overflow the stack. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !visited.has(c)) {
        visited.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/** What a non-leaf holds after backward() has freed its rule: backpropagating through it again is an error. */
function releasedNode(op: string): GradNode {
  return {
    op,
    inputs: [],
    backward: () => {
      throw new LoomError(`backward: the graph through '${op}' was already released by an earlier backward(); `
        + 'recompute the forward pass, or detach() tensors carried over from the previous step');
    },
  };
}

let sinksEnabled = true;

/**
 * Runs fn with gradient sinks off: every leaf's gradient is computed whole and then added to its .grad, one
 * float32 addition per element. A sink adds partial sums straight into .grad, which rounds differently
 * when .grad is not zero; the coordinator's workers use this for their second and later micro-batches so
 * that accumulating N micro-batches stays bit for bit the sum N workers make.
 */
export function withoutGradSinks<T>(fn: () => T): T {
  const prev = sinksEnabled;
  sinksEnabled = false;
  try {
    return fn();
  } finally {
    sinksEnabled = prev;
  }
}

/** Where a rule may accumulate input t's gradient directly: the storage of a leaf's existing .grad, else null. */
function sinkOf(t: Tensor): unknown {
  return sinksEnabled && t.node === null && t.requiresGrad && t.grad !== null && t.grad.backend === t.backend && t.grad.dtype === t.dtype
    ? t.grad.storage : null;
}

function accumulateLeafGrad(t: Tensor, g: Tensor): void {
  if (g.size !== t.size) throw new ShapeError(`backward: gradient of shape ${fmtShape(g.shape)} for a leaf of shape ${fmtShape(t.shape)}`);
  if (t.grad) {
    // In place, so that gradients living in a flat (possibly shared) buffer stay there.
    t.backend.addInPlace(t.grad.storage, g.storage, t.dtype);
  } else {
    // A copy: g may be shared with other branches of the graph.
    const storage = outsidePool(() => t.backend.alloc(t.dtype, t.size)); // it outlives a StoragePool run
    t.backend.addInPlace(storage, g.storage, t.dtype);
    t.grad = new Tensor(storage, t.shape, t.dtype, t.backend);
  }
}

// ---------------------------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------------------------

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
  backend?: Backend;
}

type Nested = number | readonly Nested[];

/** Makes a tensor from nested arrays, a flat array with a shape, or a typed array (copied). */
export function tensor(values: Nested | ArrayLike<number>, shapeOrOptions?: readonly number[] | TensorOptions, maybeOptions?: TensorOptions): Tensor {
  const shapeArg = Array.isArray(shapeOrOptions) ? (shapeOrOptions as readonly number[]) : undefined;
  const opts = (shapeArg ? maybeOptions : (shapeOrOptions as TensorOptions | undefined)) ?? {};
  const backend = opts.backend ?? getBackend();
  let flat: ArrayLike<number>;
  let shape: number[];
  if (typeof values === 'number') {
    flat = [values];
    shape = [];
  } else if (ArrayBuffer.isView(values)) {
    flat = values as ArrayLike<number>;
    shape = [flat.length];
  } else {
    ({ flat, shape } = flatten(values as readonly Nested[]));
  }
  const dtype = opts.dtype ?? (values instanceof Int32Array ? 'int32' : values instanceof Float64Array ? 'float64' : 'float32');
  if (shapeArg) {
    if (sizeOf(shapeArg) !== flat.length) {
      throw new ShapeError(`tensor: ${flat.length} values do not fill shape ${fmtShape(shapeArg)} (${sizeOf(shapeArg)} elements)`);
    }
    shape = [...shapeArg];
  }
  const t = new Tensor(backend.fromArray(dtype, flat), shape, dtype, backend);
  if (opts.requiresGrad) t.requireGrad();
  return t;
}

function flatten(values: readonly Nested[]): { flat: number[]; shape: number[] } {
  const shape: number[] = [];
  let level: unknown = values;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  const flat: number[] = [];
  const walk = (v: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new ShapeError(`tensor: expected a number at ${path || 'the top'}, got ${typeof v}`);
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new ShapeError(`tensor: ragged nested array at ${path || 'the top'}: expected ${shape[depth]} elements at depth ${depth}`);
    }
    v.forEach((x, i) => walk(x, depth + 1, `${path}[${i}]`));
  };
  walk(values, 0, '');
  return { flat, shape };
}

/** Wraps existing storage without copying (used for views into flat parameter buffers). */
export function fromStorage(storage: unknown, shape: Shape, dtype: DType, backend: Backend = getBackend()): Tensor {
  return new Tensor(storage, [...shape], dtype, backend);
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const backend = opts.backend ?? getBackend();
  const dtype = opts.dtype ?? 'float32';
  checkShape('full', shape);
  const s = backend.alloc(dtype, sizeOf(shape));
  if (value !== 0) backend.fill(s, dtype, value);
  const t = new Tensor(s, [...shape], dtype, backend);
  if (opts.requiresGrad) t.requireGrad();
  return t;
}

export const zeros = (shape: Shape, opts: TensorOptions = {}): Tensor => full(shape, 0, opts);
export const ones = (shape: Shape, opts: TensorOptions = {}): Tensor => full(shape, 1, opts);

export function arange(n: number, opts: TensorOptions = {}): Tensor {
  return tensor(Array.from({ length: n }, (_, i) => i), [n], opts);
}

function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${op}: shape ${fmtShape(shape)} must hold non-negative integers`);
  }
}

/** A tensor filled from a host array built by fn (used by the random initialisers). */
export function fromFunction(shape: Shape, fn: (i: number) => number, opts: TensorOptions = {}): Tensor {
  checkShape('fromFunction', shape);
  const dtype = opts.dtype ?? 'float32';
  const host = allocArray(dtype, sizeOf(shape));
  for (let i = 0; i < host.length; i++) host[i] = fn(i);
  const backend = opts.backend ?? getBackend();
  const t = new Tensor(backend.fromArray(dtype, host), [...shape], dtype, backend);
  if (opts.requiresGrad) t.requireGrad();
  return t;
}

// ---------------------------------------------------------------------------------------------
// Printing: PyTorch-like, summarised past 1000 elements.
// ---------------------------------------------------------------------------------------------

function formatTensor(t: Tensor): string {
  const data = t.data;
  const isInt = t.dtype === 'int32';
  const summarise = t.size > 1000;
  // Scientific notation when fixed point would hide values (PyTorch's rule), so that tiny gradients do not
  // print as 0.0000; whole numbers stay fixed unless huge.
  let sci = false;
  if (!isInt) {
    let lo = Infinity, hi = 0, whole = true;
    for (let i = 0; i < data.length; i++) {
      const a = Math.abs(data[i]);
      if (a !== 0 && a !== Infinity && !Number.isNaN(a)) {
        if (a < lo) lo = a;
        if (a > hi) hi = a;
        if (whole && !Number.isInteger(a)) whole = false;
      }
    }
    sci = hi > 0 && (hi >= 1e8 || (!whole && (hi / lo > 1000 || lo < 1e-4)));
  }
  const fmt = (v: number): string => (isInt || !Number.isFinite(v) ? String(v) : sci ? v.toExponential(4) : v.toFixed(4));
  const build = (axis: number, offset: number, indent: string): string => {
    if (axis === t.rank) return fmt(data[offset]);
    const n = t.shape[axis];
    const stride = sizeOf(t.shape.slice(axis + 1));
    const idx = summarise && n > 6 ? [0, 1, 2, -1, n - 3, n - 2, n - 1] : Array.from({ length: n }, (_, i) => i);
    const parts = idx.map((i) => (i < 0 ? '...' : build(axis + 1, offset + i * stride, indent + ' ')));
    const sep = axis === t.rank - 1 ? ', ' : ',\n' + indent + ' ';
    return '[' + parts.join(sep) + ']';
  };
  const grad = t.requiresGrad ? ', requiresGrad' : '';
  return `tensor(${build(0, 0, '       ')}, shape=${fmtShape(t.shape)}, dtype=${t.dtype}${grad})`;
}
