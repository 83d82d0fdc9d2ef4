import { Tensor } from '../tensor.js';
import type { DType } from '../dtype.js';
import type { Backend } from '../backend.js';
import { getBackend } from '../backends/registry.js';
import { LoomError, fmtShape } from '../errors.js';
import { sizeOf, type Shape } from '../shape.js';

/** A trainable tensor: a leaf that requires grad. Modules find their parameters by walking fields for these. */
export class Parameter extends Tensor {
  constructor(shape: Shape, opts: { dtype?: DType; backend?: Backend; values?: ArrayLike<number> } = {}) {
    const backend = opts.backend ?? getBackend();
    const dtype = opts.dtype ?? 'float32';
    const storage = opts.values ? backend.fromArray(dtype, opts.values) : backend.alloc(dtype, sizeOf(shape));
    if (opts.values && opts.values.length !== sizeOf(shape)) {
      throw new LoomError(`Parameter: ${opts.values.length} values for shape ${fmtShape(shape)}`);
    }
    super(storage, [...shape], dtype, backend, true, null);
  }
}

/**
 * Modules are plain objects: parameters (Parameter fields), sub-modules (Module fields), and arrays or
 * plain records of either. `namedParameters()` walks the fields in definition order, so the dotted
 * names (`layers.0.weight`, `rnn.weight_ih_l0`) are deterministic; the same names key checkpoints,
 * optimizer state and the flat gradient buffer the coordinator reduces.
 * Fields whose name starts with '_' are not walked (caches, back-references).
 */
export abstract class Module {
  training = true;

  namedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    walk(this, '', out, new Set());
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** This module and all below it, with dotted names ('' for this one). */
  namedModules(): [string, Module][] {
    const out: [string, Module][] = [];
    const visit = (v: unknown, name: string): void => {
      if (v instanceof Module) {
        out.push([name, v]);
        for (const [k, child] of fields(v)) visit(child, join(name, k));
      } else if (Array.isArray(v)) v.forEach((c, i) => visit(c, join(name, String(i))));
      else if (isPlainRecord(v)) for (const [k, c] of Object.entries(v)) visit(c, join(name, k));
    };
    visit(this, '');
    return out;
  }

  /** Sets training mode here and below (dropout is active only in training mode). */
  train(flag = true): this {
    for (const [, m] of this.namedModules()) m.training = flag;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears gradients. Gradients that live in a flat buffer are zeroed in place (they stay views). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      if (p.grad && flatGradients.has(p.grad)) p.backend.fill(p.grad.storage, p.dtype, 0);
      else p.grad = null;
    }
  }

  /** Parameter count. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}

/** Gradients that are views into a flat buffer: kept (zeroed) rather than dropped by zeroGrad. */
export const flatGradients = new WeakSet<Tensor>();

function fields(m: object): [string, unknown][] {
  return Object.entries(m).filter(([k]) => !k.startsWith('_') && k !== 'training');
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

function walk(v: unknown, name: string, out: [string, Parameter][], seen: Set<unknown>): void {
  if (v instanceof Parameter) {
    if (!seen.has(v)) {
      seen.add(v); // a tied parameter is listed once, under its first name
      out.push([name, v]);
    }
  } else if (v instanceof Module) {
    for (const [k, child] of fields(v)) walk(child, join(name, k), out, seen);
  } else if (Array.isArray(v)) {
    v.forEach((c, i) => walk(c, join(name, String(i)), out, seen));
  } else if (isPlainRecord(v)) {
    for (const [k, c] of Object.entries(v)) walk(c, join(name, k), out, seen);
  }
}
