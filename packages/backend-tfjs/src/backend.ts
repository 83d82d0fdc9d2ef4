/*
 * @loom/core's Backend interface on TF.js tensors. Loom's autograd decides what to compute; each kernel
 * here is a few TF.js ops inside tf.tidy, so the values stay where the TF.js runtime keeps them (on the
 * GPU with tfjs-node-gpu) and cross to the host only when read (read(), which Tensor.data calls).
 *
 * What differs from the host backends:
 *   - no float64 (TF.js has none): refused by name; `dtypes` declares float32 and int32;
 *   - no host storage (`hostStorage: false`): read() returns a copy, write() uploads, and the coordinator
 *     mirrors parameters to its shared host buffers (mirrorParameters in @loom/core's flat.ts);
 *   - one TF.js engine per thread: each kernel makes its runtime's TF.js backend the active one first, so
 *     two of these backends (say tfjs-cpu and tfjs-wasm) can be used in one thread.
 */
import type { Backend, BinaryOp, DType, ReduceOp, Shape, TypedArray, UnaryOp } from '@loom/core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { recurrentBackwardTf, recurrentForwardTf, type RecurrentInputs, type RecurrentSpec, type StepSaved } from './recurrent.js';
import type { LoadedRuntime, Tf, TfjsRuntime } from './runtime.js';
import { TfStorage } from './storage.js';

type S = TfStorage;
type RecurrentGradients = ReturnType<Backend['recurrentBackward']>;

/** What the fused recurrent forward keeps for its backward, keyed by the `saved` array core holds. */
const savedRecurrent = new WeakMap<readonly S[], { steps: StepSaved[]; wHh: Tensor; bIh: boolean; bHh: boolean }>();

export class TfjsBackend implements Backend<S> {
  readonly name: TfjsRuntime;
  readonly dtypes: readonly DType[] = ['float32', 'int32'];
  readonly hostStorage = false;
  private readonly tf: Tf;
  private readonly tfBackend: string;

  constructor(runtime: LoadedRuntime) {
    this.name = runtime.runtime;
    this.tf = runtime.tf;
    this.tfBackend = runtime.tfBackend;
  }

  /** The TF.js API this backend runs on (for interop: wrap or read tensors yourself). */
  get tfjs(): Tf {
    return this.tf;
  }

  /** Makes this runtime's TF.js backend the engine's active one (synchronous once it is initialised). */
  private use(): Tf {
    const tf = this.tf;
    if (tf.getBackend() !== this.tfBackend) void tf.setBackend(this.tfBackend);
    return tf;
  }

  /** Runs f on the active backend inside tf.tidy: its result, flattened (nothing else survives). */
  private compute(f: (tf: Tf) => Tensor): Tensor {
    const tf = this.use();
    return tf.tidy(() => tf.reshape(f(tf), [-1]));
  }

  /** compute(f) in a new box. (In-place kernels put compute's tensor into their box instead: a second box
   *  holding the same tensor would dispose it when collected.) */
  private run(f: (tf: Tf) => Tensor): S {
    return new TfStorage(this.compute(f));
  }

  private checkDtype(where: string, dtype: DType): void {
    if (dtype === 'float64') {
      throw new Error(`backend ${this.name}: ${where}: float64 is not supported (TensorFlow.js has no float64 tensors); use float32, or the 'reference' backend for float64 gradient checks`);
    }
    if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`backend ${this.name}: ${where}: unknown dtype ${String(dtype)}`);
  }

  // ---- storage ----

  alloc(dtype: DType, size: number): S {
    this.checkDtype('alloc', dtype);
    return this.run((tf) => tf.zeros([size], td(dtype)));
  }

  fromArray(dtype: DType, values: ArrayLike<number>): S {
    this.checkDtype('fromArray', dtype);
    return this.run((tf) => tf.tensor1d(hostArray(dtype, values), td(dtype)));
  }

  /** Downloads the values (dataSync) into a fresh host array: writing to it changes nothing here. */
  read(s: S, dtype: DType): TypedArray {
    this.use();
    const data = s.t.dataSync() as Float32Array | Int32Array;
    return dtype === 'int32' && !(data instanceof Int32Array) ? Int32Array.from(data) : data.slice();
  }

  write(s: S, dtype: DType, values: ArrayLike<number>): void {
    this.checkDtype('write', dtype);
    if (values.length !== s.t.size) throw new Error(`backend ${this.name}: write: ${values.length} values for storage of ${s.t.size} elements`);
    s.replace(this.compute((tf) => tf.tensor1d(hostArray(dtype, values), td(dtype))));
  }

  fill(s: S, dtype: DType, value: number): void {
    s.replace(this.compute((tf) => tf.fill([s.t.size], value, td(dtype))));
  }

  cast(s: S, from: DType, to: DType): S {
    this.checkDtype('cast', to);
    // float → int32 truncates toward zero (as the reference backend's Math.trunc).
    return this.run((tf) => (from === to ? tf.clone(s.t) : tf.cast(s.t, td(to))));
  }

  addInPlace(dst: S, src: S, dtype: DType): void {
    dst.replace(this.compute((tf) => tf.cast(tf.add(dst.t, src.t), td(dtype))));
  }

  // ---- elementwise ----

  unary(op: UnaryOp, x: S, dtype: DType): S {
    return this.run((tf) => tf.cast(unaryOp(tf, op, x.t), td(dtype)));
  }

  unaryBackward(op: UnaryOp, x: S, y: S, dy: S, dtype: DType): S {
    return this.run((tf) => {
      const g = dy.t, X = x.t, Y = y.t;
      let dx: Tensor;
      switch (op) {
        case 'neg': dx = tf.neg(g); break;
        case 'exp': dx = tf.mul(g, Y); break;
        case 'log': dx = tf.div(g, X); break;
        case 'sqrt': dx = tf.div(tf.mul(g, 0.5), Y); break;
        case 'tanh': dx = tf.mul(g, tf.sub(1, tf.mul(Y, Y))); break;
        case 'sigmoid': dx = tf.mul(tf.mul(g, Y), tf.sub(1, Y)); break;
        case 'relu': dx = tf.where(tf.greater(X, 0), g, tf.zerosLike(g)); break;
        case 'abs': dx = tf.mul(g, tf.sign(X)); break;
        default: throw new Error(`backend ${this.name}: unaryBackward: unknown op '${String(op)}'`);
      }
      return tf.cast(dx, td(dtype));
    });
  }

  binary(op: BinaryOp, a: S, aShape: Shape, b: S, bShape: Shape, outShape: Shape, dtype: DType): S {
    if (size(outShape) === 0) return this.alloc(dtype, 0);
    return this.run((tf) => {
      const A = tf.reshape(a.t, [...aShape]), B = tf.reshape(b.t, [...bShape]);
      const out = binaryOp(tf, op, A, B, dtype);
      // Broadcasting is NumPy's in both; an operand may still be smaller than outShape only when outShape
      // has leading 1s that neither operand has (rank 0 against rank 0 gives rank 0 either way).
      return tf.cast(out.size === size(outShape) ? out : tf.broadcastTo(out, [...outShape]), td(dtype));
    });
  }

  where(cond: S, cShape: Shape, a: S, aShape: Shape, b: S, bShape: Shape, outShape: Shape, dtype: DType): S {
    if (size(outShape) === 0) return this.alloc(dtype, 0);
    return this.run((tf) => {
      const shape = [...outShape];
      const C = tf.broadcastTo(tf.notEqual(tf.reshape(cond.t, [...cShape]), 0), shape);
      const A = tf.broadcastTo(tf.reshape(a.t, [...aShape]), shape), B = tf.broadcastTo(tf.reshape(b.t, [...bShape]), shape);
      return tf.cast(tf.where(C, A, B), td(dtype));
    });
  }

  // ---- reductions ----

  reduce(op: ReduceOp, x: S, outer: number, axisLen: number, inner: number, dtype: DType): S {
    const n = outer * inner;
    if (n === 0) return this.alloc(dtype, 0);
    if (axisLen === 0) {
      // An empty axis: sums are 0; a max is -Infinity (the reference backend's starting value).
      return this.run((tf) => tf.fill([n], op === 'sum' ? 0 : -Infinity, td(dtype)));
    }
    return this.run((tf) => {
      const X = tf.reshape(x.t, [outer, axisLen, inner]);
      if (op === 'sum') return tf.cast(tf.sum(X, 1), td(dtype));
      const m = tf.max(X, 1);
      // NaN propagates, as in PyTorch and the reference backend, whatever the runtime's max kernel does.
      return dtype === 'int32' ? m : tf.where(tf.any(tf.isNaN(X), 1), tf.fill([outer, inner], NaN), m);
    });
  }

  // ---- products ----

  matmul(a: S, b: S, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number, dtype: DType): S {
    if (batch * m * n === 0 || k === 0) return this.alloc(dtype, batch * m * n);
    return this.run((tf) => {
      const [ar, ac] = transA ? [k, m] : [m, k];
      const [br, bc] = transB ? [n, k] : [k, n];
      if (batch === 1) return tf.matMul(tf.reshape(a.t, [ar, ac]), tf.reshape(b.t, [br, bc]), transA, transB);
      // A batch stride of 0 broadcasts that operand over the batch (TF.js broadcasts batch axes of size 1).
      const A = tf.reshape(a.t, [aBatchStride === 0 ? 1 : batch, ar, ac]);
      const B = tf.reshape(b.t, [bBatchStride === 0 ? 1 : batch, br, bc]);
      return tf.matMul(A, B, transA, transB);
    });
  }

  // ---- movement ----

  permute(x: S, shape: Shape, perm: readonly number[], _dtype: DType): S {
    return this.run((tf) => tf.transpose(tf.reshape(x.t, [...shape]), [...perm]));
  }

  sliceCopy(x: S, shape: Shape, starts: readonly number[], outShape: Shape, dtype: DType): S {
    if (size(outShape) === 0) return this.alloc(dtype, 0);
    return this.run((tf) => tf.slice(tf.reshape(x.t, [...shape]), [...starts], [...outShape]));
  }

  sliceAddInto(dst: S, dstShape: Shape, src: S, srcShape: Shape, starts: readonly number[], dtype: DType): void {
    if (size(srcShape) === 0) return;
    // src padded with zeros to dst's shape at `starts`, then added.
    dst.replace(this.compute((tf) => {
      const pads = dstShape.map((d, i): [number, number] => [starts[i], d - starts[i] - srcShape[i]]);
      return tf.cast(tf.add(tf.reshape(dst.t, [...dstShape]), tf.pad(tf.reshape(src.t, [...srcShape]), pads)), td(dtype));
    }));
  }

  gatherRows(table: S, cols: number, idx: S, n: number, dtype: DType): S {
    if (n * cols === 0) return this.alloc(dtype, n * cols);
    return this.run((tf) => tf.gather(tf.reshape(table.t, [table.t.size / cols, cols]), idx.t, 0));
  }

  scatterAddRowsInto(dst: S, cols: number, idx: S, n: number, src: S, dtype: DType): void {
    if (n * cols === 0) return;
    const rows = dst.t.size / cols;
    // scatterND sums the updates of repeated indices.
    dst.replace(this.compute((tf) => tf.cast(tf.add(
      tf.reshape(dst.t, [rows, cols]),
      tf.scatterND(tf.reshape(idx.t, [n, 1]), tf.reshape(src.t, [n, cols]), [rows, cols]),
    ), td(dtype))));
  }

  // ---- fused for stability ----

  logSoftmax(x: S, rows: number, cols: number, dtype: DType): S {
    if (rows * cols === 0) return this.alloc(dtype, rows * cols);
    return this.run((tf) => {
      const X = tf.reshape(x.t, [rows, cols]);
      const m0 = tf.max(X, 1, true);
      // An all -Infinity row gives -Infinity/NaN as in PyTorch, without -Infinity - -Infinity here.
      const m = tf.where(tf.equal(m0, -Infinity), tf.zerosLike(m0), m0);
      const lse = tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(X, m)), 1, true)));
      return tf.sub(X, lse);
    });
  }

  logSoftmaxBackward(y: S, dy: S, rows: number, cols: number, dtype: DType): S {
    if (rows * cols === 0) return this.alloc(dtype, rows * cols);
    return this.run((tf) => {
      const G = tf.reshape(dy.t, [rows, cols]);
      return tf.sub(G, tf.mul(tf.exp(tf.reshape(y.t, [rows, cols])), tf.sum(G, 1, true)));
    });
  }

  // ---- the fused recurrent primitive (recurrent.ts) ----

  recurrentForward(spec: RecurrentSpec, xp: S, wHh: S, bIh: S | null, bHh: S | null, h0: S, c0: S | null, save: boolean, _dtype: DType): { y: S; saved: readonly S[] } {
    const tf = this.use();
    let steps: StepSaved[] = [];
    // tf.tidy keeps the tensors it returns: y, a clone of W_hh (the backward uses W_hh as it was here, even
    // if the parameter is overwritten meanwhile; a clone shares the data) and every step's saved tensors.
    const [y, ...kept] = tf.tidy(() => {
      const x = this.inputs(tf, spec, { xp, wHh, bIh, bHh, h0, c0 });
      const r = recurrentForwardTf(tf, spec, x, save);
      steps = r.saved;
      const keep = new Set<Tensor>(save ? [tf.clone(x.wHh)] : []);
      for (const st of steps) for (const t of [st.h, st.c, ...st.gates]) if (t) keep.add(t);
      return [tf.reshape(r.y, [-1]), ...keep];
    });
    // Each kept tensor in a box of `saved`: freed by the backward or, if it never runs, once autograd drops
    // the node (the boxes' FinalizationRegistry).
    const saved: S[] = kept.map((t) => new TfStorage(t));
    if (save) savedRecurrent.set(saved, { steps, wHh: kept[0], bIh: bIh !== null, bHh: bHh !== null });
    return { y: new TfStorage(y), saved };
  }

  recurrentBackward(spec: RecurrentSpec, saved: readonly S[], _wHh: S, dy: S, needs: { wHh: boolean; bIh: boolean; bHh: boolean }, _dtype: DType): RecurrentGradients {
    const keep = savedRecurrent.get(saved);
    if (!keep) throw new Error(`backend ${this.name}: recurrentBackward: nothing saved by the forward (it ran with save = false)`);
    const tf = this.use();
    const { batch: B, hidden: H } = spec;
    const g: Record<string, Tensor> = tf.tidy(() => {
      const r = recurrentBackwardTf(tf, spec, keep, keep.steps, tf.reshape(dy.t, [-1, B, H]));
      const wanted = { dxp: true, dwHh: needs.wHh, dbIh: needs.bIh, dbHh: needs.bHh, dh0: true, dc0: true };
      const out: Record<string, Tensor> = {};
      for (const k of Object.keys(wanted) as (keyof typeof wanted)[]) if (r[k] && wanted[k]) out[k] = tf.reshape(r[k]!, [-1]);
      return out;
    });
    // The backward runs once (autograd releases the node): free what the forward kept now, not at GC.
    for (const s of saved) s.dispose();
    savedRecurrent.delete(saved);
    const box = (t: Tensor | undefined): S | null => (t ? new TfStorage(t) : null);
    return { dxp: box(g.dxp)!, dwHh: box(g.dwHh), dbIh: box(g.dbIh), dbHh: box(g.dbHh), dh0: box(g.dh0)!, dc0: box(g.dc0) };
  }

  /** The storages as shaped tensors (views) for recurrent.ts. */
  private inputs(tf: Tf, spec: RecurrentSpec, s: { xp: S; wHh: S; bIh: S | null; bHh: S | null; h0: S; c0: S | null }): RecurrentInputs {
    const { steps: T, batch: B, hidden: H } = spec;
    const GH = s.wHh.t.size / H;
    return {
      xp: tf.reshape(s.xp.t, [T, B, GH]),
      wHh: tf.reshape(s.wHh.t, [GH, H]),
      bIh: s.bIh ? s.bIh.t : null,
      bHh: s.bHh ? s.bHh.t : null,
      h0: tf.reshape(s.h0.t, [B, H]),
      c0: s.c0 ? tf.reshape(s.c0.t, [B, H]) : null,
    };
  }
}

function hostArray(dtype: DType, values: ArrayLike<number>): Float32Array | Int32Array {
  if (dtype === 'int32') return values instanceof Int32Array ? values : Int32Array.from(values);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** A TF.js dtype (float64 never gets this far: alloc, fromArray, cast and write refuse it). */
function td(dtype: DType): 'float32' | 'int32' {
  if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`backend-tfjs: no TF.js dtype for ${dtype}`);
  return dtype;
}

function size(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function unaryOp(tf: Tf, op: UnaryOp, x: Tensor): Tensor {
  switch (op) {
    case 'neg': return tf.neg(x);
    case 'exp': return tf.exp(x);
    case 'log': return tf.log(x);
    case 'sqrt': return tf.sqrt(x);
    case 'tanh': return tf.tanh(x);
    case 'sigmoid': return tf.sigmoid(x);
    case 'relu': return tf.relu(x);
    case 'abs': return tf.abs(x);
    default: throw new Error(`backend-tfjs: unary: unknown op '${String(op)}'`);
  }
}

function binaryOp(tf: Tf, op: BinaryOp, a: Tensor, b: Tensor, dtype: DType): Tensor {
  switch (op) {
    case 'add': return tf.add(a, b);
    case 'sub': return tf.sub(a, b);
    case 'mul': return tf.mul(a, b);
    // TF.js divides int32 with floor; the reference backend truncates toward zero (x / y stored in an Int32Array).
    case 'div': return dtype === 'int32' ? tf.cast(tf.div(tf.cast(a, 'float32'), tf.cast(b, 'float32')), 'int32') : tf.div(a, b);
    case 'pow': return tf.pow(a, b);
    case 'lt': return tf.less(a, b);
    case 'le': return tf.lessEqual(a, b);
    case 'gt': return tf.greater(a, b);
    case 'ge': return tf.greaterEqual(a, b);
    case 'eq': return tf.equal(a, b);
    case 'ne': return tf.notEqual(a, b);
    default: throw new Error(`backend-tfjs: binary: unknown op '${String(op)}'`);
  }
}
