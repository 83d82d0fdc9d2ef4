/*
 * Flat parameter storage: every parameter of a module (and, separately, every gradient) as a view into
 * one contiguous Float32Array, laid out in namedParameters() order. The data-parallel coordinator puts
 * these buffers in SharedArrayBuffers and all-reduces them in place, without copying.
 *
 *   values: | p0 ........ | pad | p1 .... | pad | p2 ............. | pad |
 *           ^ offset 0          ^ offset aligned to ALIGN floats (64 bytes: one cache line, so two
 *                                 workers summing neighbouring slices never share a line)
 *   grads:  the same layout.
 */
import type { Module, Parameter } from './nn/module.js';
import { flatGradients } from './nn/module.js';
import { Tensor } from './tensor.js';
import { LoomError, fmtShape } from './errors.js';

export const ALIGN = 16;

export interface FlatEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

export interface FlatLayout {
  readonly entries: readonly FlatEntry[];
  /** Floats in a buffer holding the layout (padding included). */
  readonly length: number;
}

export interface FlatParameters {
  readonly layout: FlatLayout;
  readonly values: Float32Array;
  readonly grads: Float32Array;
}

export function flatLayout(module: Module): FlatLayout {
  const entries: FlatEntry[] = [];
  let offset = 0;
  for (const [name, p] of module.namedParameters()) {
    entries.push({ name, shape: [...p.shape], offset, size: p.size });
    offset += Math.ceil(p.size / ALIGN) * ALIGN;
  }
  return { entries, length: offset };
}

/** Bytes for a buffer of the layout; handy for sizing SharedArrayBuffers. */
export function flatBytes(layout: FlatLayout): number {
  return layout.length * Float32Array.BYTES_PER_ELEMENT;
}

export interface FlattenOptions {
  /** Buffer for the values (e.g. a Float32Array over a SharedArrayBuffer); allocated when absent. */
  values?: Float32Array;
  /** Buffer for the gradients; allocated when absent. */
  grads?: Float32Array;
  /** 'copy' (default) writes the module's current values into `values`; 'adopt' keeps what `values`
   *  holds (a worker joining parameters another thread has initialised). */
  init?: 'copy' | 'adopt';
  /** Allocate missing buffers on SharedArrayBuffers. */
  shared?: boolean;
}

/**
 * The module's layout and its two buffers: the caller's (checked to be Float32Arrays long enough, naming
 * `where`) or new ones, on SharedArrayBuffers when opts.shared.
 */
function flatBuffers(where: string, module: Module, opts: FlattenOptions): FlatParameters {
  const layout = flatLayout(module);
  const alloc = (): Float32Array =>
    opts.shared ? new Float32Array(new SharedArrayBuffer(flatBytes(layout))) : new Float32Array(layout.length);
  const values = opts.values ?? alloc();
  const grads = opts.grads ?? alloc();
  for (const [what, buf] of [['values', values], ['grads', grads]] as const) {
    if (!(buf instanceof Float32Array)) throw new LoomError(`${where}: '${what}' must be a Float32Array`);
    if (buf.length < layout.length) {
      throw new LoomError(`${where}: '${what}' holds ${buf.length} floats, the layout needs ${layout.length}`);
    }
  }
  return { layout, values, grads };
}

/**
 * Rebinds every parameter's storage to a view of one flat buffer and gives it a gradient view into a
 * second one. Afterwards, optimizers and reductions can work on `values` and `grads` as wholes, and
 * `backward()` accumulates straight into `grads`.
 */
export function flattenParameters(module: Module, opts: FlattenOptions = {}): FlatParameters {
  const { layout, values, grads } = flatBuffers('flattenParameters', module, opts);
  const params = module.namedParameters();
  params.forEach(([name, p], i) => {
    const e = layout.entries[i];
    checkHostFloat32(name, p);
    const view = values.subarray(e.offset, e.offset + e.size);
    if (opts.init !== 'adopt') view.set(p.data);
    p.storage = view;
    const g = new Tensor(grads.subarray(e.offset, e.offset + e.size), p.shape, p.dtype, p.backend);
    if (p.grad) (g.storage as Float32Array).set(p.grad.data);
    p.grad = g;
    flatGradients.add(g);
  });
  return { layout, values, grads };
}

function checkHostFloat32(name: string, p: Parameter): void {
  if (p.dtype !== 'float32') throw new LoomError(`flattenParameters: parameter '${name}' is ${p.dtype}; flat storage holds float32`);
  if (!(p.storage instanceof Float32Array)) {
    throw new LoomError(`flattenParameters: parameter '${name}' ${fmtShape(p.shape)} lives on backend ${p.backend.name}, which has no host storage`);
  }
}

/** Flat host buffers for parameters that live on a device: see mirrorParameters. */
export interface MirroredParameters extends FlatParameters {
  /** Writes `values` into every parameter's own storage (after an update of the flat buffer). */
  upload(): void;
  /** Writes every parameter's gradient into `grads` (zeros where it has none) and drops the device gradients. */
  download(): void;
}

/**
 * flattenParameters for a backend without host storage (Backend.hostStorage false): the same layout and
 * host buffers, but the parameters keep their device storage, so values and gradients are copied instead
 * of shared: `upload()` after the optimizer has updated `values`, `download()` after backward. 'copy' (the
 * default) reads the parameters into `values`; 'adopt' uploads what `values` holds.
 */
export function mirrorParameters(module: Module, opts: FlattenOptions = {}): MirroredParameters {
  const { layout, values, grads } = flatBuffers('mirrorParameters', module, opts);
  const params = module.namedParameters();
  for (const [name, p] of params) {
    if (p.dtype !== 'float32') throw new LoomError(`mirrorParameters: parameter '${name}' is ${p.dtype}; flat storage holds float32`);
    if (!p.backend.write) throw new LoomError(`mirrorParameters: parameter '${name}' lives on backend ${p.backend.name}, which has no write()`);
  }
  const view = (buf: Float32Array, i: number): Float32Array => buf.subarray(layout.entries[i].offset, layout.entries[i].offset + layout.entries[i].size);
  const upload = (): void => params.forEach(([, p], i) => p.backend.write!(p.storage, p.dtype, view(values, i)));
  const download = (): void => params.forEach(([, p], i) => {
    const g = view(grads, i);
    if (p.grad) g.set(p.grad.data);
    else g.fill(0);
    p.grad = null;
  });
  if (opts.init === 'adopt') upload();
  else params.forEach(([, p], i) => view(values, i).set(p.data));
  return { layout, values, grads, upload, download };
}
