/*
 * Optimizers: the update rules of rules.ts applied either per parameter (SGD, Adam, AdamW, Adagrad, on
 * a Module or a list of named parameters) or over one flat buffer (FlatOptimizer, on FlatParameters,
 * with ranges for the data-parallel coordinator's sharded update). Both keep their state keyed by
 * parameter name in the same plain format, so checkpoints move freely between them.
 *
 * Step counting follows torch for the flat case, where every parameter has a gradient on every step.
 * Per-parameter optimizers skip a parameter whose grad is null (as torch does) but count steps per
 * optimizer, not per parameter: a parameter that missed steps gets Adam's bias correction for the
 * optimizer's count (torch would use its own, smaller, count), and with dampening > 0 its momentum
 * buffer starts from zero rather than from its first gradient.
 */
import { LoomError, fmtShape } from '../errors.js';
import { Module, Parameter, flatGradients } from '../nn/module.js';
import type { FlatParameters } from '../flat.js';
import { flatBytes } from '../flat.js';
import {
  OPTIMIZER_NAMES, resolveOptions,
  type AdagradOptions, type AdamOptions, type OptimizerKind, type OptionsByKind, type OptionsInput, type SGDOptions,
} from './options.js';
import { fmt } from './fmt.js';
import { adagradRule, adamRule, adamwRule, sgdRule, type UpdateRule } from './rules.js';

/**
 * An optimizer's state as plain data (typed arrays, numbers, strings): what a checkpoint stores.
 * `state[paramName][stateName]` holds one value per element of the parameter; `step` is the number of
 * steps taken; `options` records the hyperparameters the state was built with.
 */
export interface OptimizerState<K extends OptimizerKind = OptimizerKind> {
  kind: K;
  options: OptionsByKind[K];
  lr: number;
  step: number;
  state: Record<string, Record<string, Float32Array>>;
}

/** The update rule for a kind and its resolved options. */
export function updateRule<K extends OptimizerKind>(kind: K, options: OptionsByKind[K]): UpdateRule<OptionsByKind[K]> {
  const rules: { [k in OptimizerKind]: (o: OptionsByKind[k]) => UpdateRule<OptionsByKind[k]> } = {
    sgd: sgdRule,
    adam: (o) => adamRule(o),
    adamw: adamwRule,
    adagrad: adagradRule,
  };
  const make = rules[kind] as (o: OptionsByKind[K]) => UpdateRule<OptionsByKind[K]>;
  if (!make) throw new LoomError(`updateRule: unknown optimizer kind ${fmt(kind)} (known: ${Object.keys(rules).join(', ')})`);
  return make(options);
}

/**
 * What every optimizer shares: options, learning rate, step count and the state dict. Subclasses say
 * where values, gradients and state live.
 */
export abstract class Optimizer<K extends OptimizerKind = OptimizerKind> {
  readonly kind: K;
  /** Resolved options (defaults filled in; frozen). `lr` here is the initial rate; the current one is `this.lr`. */
  readonly options: OptionsByKind[K];
  readonly rule: UpdateRule<OptionsByKind[K]>;
  /** Steps taken so far; the next step is number stepCount + 1 (Adam's bias correction uses it). */
  stepCount = 0;
  private currentLr: number;

  protected constructor(kind: K, options: OptionsInput<K>) {
    this.kind = kind;
    this.options = Object.freeze(resolveOptions(kind, options)) as OptionsByKind[K];
    this.rule = updateRule(kind, this.options);
    this.currentLr = this.options.lr;
  }

  /** For messages: 'Adam', or 'FlatOptimizer(adam)'. */
  protected get who(): string {
    return OPTIMIZER_NAMES[this.kind];
  }

  /** The learning rate the next step uses; schedules set it. */
  get lr(): number {
    return this.currentLr;
  }

  set lr(value: number) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new LoomError(`${this.who}: lr must be a non-negative finite number, got ${fmt(value)}`);
    }
    this.currentLr = value;
  }

  /** Takes one step from the current gradients. */
  abstract step(): void;

  /** Clears the gradients (in place where they live in a flat buffer). */
  abstract zeroGrad(): void;

  /** Each parameter's name, element count and live state arrays (views, in rule.stateNames order). */
  protected abstract stateSlots(): { name: string; size: number; state: readonly Float32Array[] }[];

  /** A snapshot (copies) of the state, keyed by parameter name and state name. */
  stateDict(): OptimizerState<K> {
    const state: Record<string, Record<string, Float32Array>> = {};
    for (const slot of this.stateSlots()) {
      const rec: Record<string, Float32Array> = {};
      this.rule.stateNames.forEach((s, i) => (rec[s] = slot.state[i].slice()));
      state[slot.name] = rec;
    }
    return { kind: this.kind, options: cloneOptions(this.options), lr: this.lr, step: this.stepCount, state };
  }

  /**
   * Restores state, learning rate and step count. The kind, the parameter names, the state names and
   * the sizes must match; every mismatch is listed in one error and nothing is changed. The
   * hyperparameters stay this optimizer's own (as constructed from the run's config); those recorded
   * in the checkpoint are not applied.
   */
  loadStateDict(sd: OptimizerState): void {
    const where = `${this.who}.loadStateDict`;
    if (typeof sd !== 'object' || sd === null) throw new LoomError(`${where}: expected an optimizer state object, got ${fmt(sd)}`);
    const problems: string[] = [];
    if (sd.kind !== this.kind) problems.push(`kind is ${fmt(sd.kind)}, this optimizer is '${this.kind}'`);
    if (typeof sd.lr !== 'number' || !Number.isFinite(sd.lr) || sd.lr < 0) problems.push(`lr must be a non-negative finite number, got ${fmt(sd.lr)}`);
    if (!Number.isInteger(sd.step) || sd.step < 0) problems.push(`step must be a non-negative integer, got ${fmt(sd.step)}`);
    const saved = typeof sd.state === 'object' && sd.state !== null ? sd.state : null;
    if (!saved) problems.push(`state must be a record of parameter names, got ${fmt(sd.state)}`);
    const slots = this.stateSlots();
    const names = this.rule.stateNames;
    if (saved) {
      const mine = new Set(slots.map((s) => s.name));
      for (const name of Object.keys(saved)) if (!mine.has(name)) problems.push(`parameter '${name}' is in the checkpoint but not in this optimizer`);
      for (const slot of slots) {
        const rec = saved[slot.name];
        if (rec === undefined) {
          problems.push(`parameter '${slot.name}' is missing from the checkpoint`);
          continue;
        }
        for (const s of Object.keys(rec)) {
          if (!names.includes(s)) problems.push(`'${slot.name}'.${s} is not state of this optimizer (expected ${names.join(', ') || 'no state'})`);
        }
        for (const s of names) {
          const arr = rec[s] as ArrayLike<number> | undefined;
          if (arr === undefined) problems.push(`'${slot.name}'.${s} is missing`);
          else if (typeof arr !== 'object' || typeof arr.length !== 'number') problems.push(`'${slot.name}'.${s} is not an array`);
          else if (arr.length !== slot.size) problems.push(`'${slot.name}'.${s} has ${arr.length} values, the parameter has ${slot.size}`);
        }
      }
    }
    if (problems.length > 0) {
      throw new LoomError(`${where}: the state does not fit this optimizer (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`);
    }
    for (const slot of slots) {
      names.forEach((s, i) => slot.state[i].set(saved![slot.name][s]));
    }
    this.lr = sd.lr;
    this.stepCount = sd.step;
  }
}

function cloneOptions<O>(o: O): O {
  const copy = { ...o } as Record<string, unknown>;
  for (const [k, v] of Object.entries(copy)) if (Array.isArray(v)) copy[k] = [...v];
  return copy as O;
}

// ---------------------------------------------------------------------------------------------
// Per-parameter optimizers
// ---------------------------------------------------------------------------------------------

/** Named parameters: a Module (walked with namedParameters()) or an explicit list. */
export type NamedParameters = Module | [string, Parameter][];

/** Applies the rule to each parameter over [0, size), with state arrays of its own. */
export abstract class ParameterOptimizer<K extends OptimizerKind> extends Optimizer<K> {
  readonly params: readonly [string, Parameter][];
  private readonly state: Float32Array[][];

  protected constructor(kind: K, params: NamedParameters, options: OptionsInput<K>) {
    super(kind, options);
    this.params = checkParams(this.who, params);
    this.state = this.params.map(([, p]) => this.rule.initialValues.map((v) => new Float32Array(p.size).fill(v)));
  }

  step(): void {
    const t = ++this.stepCount;
    const lr = this.lr;
    this.params.forEach(([name, p], i) => {
      const g = p.grad;
      if (g === null) return; // no gradient this step: leave the parameter and its state alone, like torch
      const values = p.storage;
      const grads = g.storage;
      if (!(values instanceof Float32Array) || !(grads instanceof Float32Array) || grads.length !== values.length) {
        throw new LoomError(`${this.who}.step: parameter '${name}' ${fmtShape(p.shape)} needs float32 host values and a gradient of the same size`);
      }
      this.rule.update(values, grads, this.state[i], 0, values.length, this.options, t, lr, 1);
    });
  }

  zeroGrad(): void {
    for (const [, p] of this.params) {
      if (p.grad && flatGradients.has(p.grad)) (p.grad.storage as Float32Array).fill(0);
      else p.grad = null;
    }
  }

  protected stateSlots(): { name: string; size: number; state: readonly Float32Array[] }[] {
    return this.params.map(([name, p], i) => ({ name, size: p.size, state: this.state[i] }));
  }
}

function checkParams(who: string, params: NamedParameters): [string, Parameter][] {
  const list = params instanceof Module ? params.namedParameters() : params;
  if (!Array.isArray(list)) throw new LoomError(`${who}: params must be a Module or a list of [name, Parameter] pairs, got ${fmt(params)}`);
  const names = new Set<string>();
  const seen = new Set<Parameter>();
  list.forEach((pair, i) => {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || !(pair[1] instanceof Parameter)) {
      throw new LoomError(`${who}: params[${i}] must be a [name, Parameter] pair`);
    }
    const [name, p] = pair;
    if (names.has(name)) throw new LoomError(`${who}: parameter name '${name}' appears twice`);
    if (seen.has(p)) throw new LoomError(`${who}: parameter '${name}' is listed twice (under another name too)`);
    names.add(name);
    seen.add(p);
    if (p.dtype !== 'float32' || !(p.storage instanceof Float32Array)) {
      throw new LoomError(`${who}: parameter '${name}' ${fmtShape(p.shape)} is ${p.dtype} on backend ${p.backend.name}; optimizers update float32 host parameters`);
    }
  });
  return [...list];
}

/** Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight decay. */
export class SGD extends ParameterOptimizer<'sgd'> {
  constructor(params: NamedParameters, options: Partial<SGDOptions> & { lr: number }) {
    super('sgd', params, options);
  }
}

/** Adam (Kingma & Ba, 2015) with weight decay as an L2 term in the gradient; amsgrad optional. */
export class Adam extends ParameterOptimizer<'adam'> {
  constructor(params: NamedParameters, options: Partial<AdamOptions> = {}) {
    super('adam', params, options);
  }
}

/** AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, p ·= 1 − lr·weightDecay. */
export class AdamW extends ParameterOptimizer<'adamw'> {
  constructor(params: NamedParameters, options: Partial<AdamOptions> = {}) {
    super('adamw', params, options);
  }
}

/** Adagrad (Duchi et al., 2011) with torch's lrDecay and initialAccumulatorValue. */
export class Adagrad extends ParameterOptimizer<'adagrad'> {
  constructor(params: NamedParameters, options: Partial<AdagradOptions> = {}) {
    super('adagrad', params, options);
  }
}

/** The per-parameter optimizer for a kind named in a config. */
export function createOptimizer<K extends OptimizerKind>(kind: K, params: NamedParameters, options: OptionsInput<K>): ParameterOptimizer<K> {
  switch (kind) {
    case 'sgd': return new SGD(params, options as OptionsInput<'sgd'>) as unknown as ParameterOptimizer<K>;
    case 'adam': return new Adam(params, options) as unknown as ParameterOptimizer<K>;
    case 'adamw': return new AdamW(params, options) as unknown as ParameterOptimizer<K>;
    case 'adagrad': return new Adagrad(params, options as OptionsInput<'adagrad'>) as unknown as ParameterOptimizer<K>;
    default: throw new LoomError(`createOptimizer: unknown optimizer kind ${fmt(kind)} (known: ${Object.keys(OPTIMIZER_NAMES).join(', ')})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Flat optimizer
// ---------------------------------------------------------------------------------------------

export interface FlatOptimizerOptions {
  /** Allocate the state buffers on SharedArrayBuffers, so worker threads can update slices of them. */
  shared?: boolean;
  /**
   * Adopt existing state buffers (one per rule.stateNames entry, each of at least layout.length
   * floats), as they are: a worker joining state that another thread allocated and initialised.
   */
  state?: readonly Float32Array[];
}

/**
 * An optimizer over FlatParameters: values, gradients and each state array are flat Float32Arrays in the
 * layout of flat.ts. `updateRange(lo, hi)` is one optimizer step restricted to [lo, hi), so each worker
 * of the data-parallel coordinator can update its own slice of shared buffers; `step()` is the whole
 * range. Padding between parameters is never touched.
 *
 *   values:        | p0 ...... | pad | p1 .. | pad |
 *   grads:         | same layout                   |
 *   stateBuffers:  one per rule.stateNames entry, same layout (e.g. Adam: expAvg, expAvgSq)
 */
export class FlatOptimizer<K extends OptimizerKind = OptimizerKind> extends Optimizer<K> {
  readonly flat: FlatParameters;
  /** The state, one flat buffer per rule.stateNames entry (share these with workers). */
  readonly stateBuffers: readonly Float32Array[];

  constructor(flat: FlatParameters, kind: K, options: OptionsInput<K>, opts: FlatOptimizerOptions = {}) {
    if (!(kind in OPTIMIZER_NAMES)) throw new LoomError(`FlatOptimizer: unknown optimizer kind ${fmt(kind)} (known: ${Object.keys(OPTIMIZER_NAMES).join(', ')})`);
    super(kind, options);
    const { layout, values, grads } = flat ?? ({} as Partial<FlatParameters>);
    if (!layout || !(values instanceof Float32Array) || !(grads instanceof Float32Array)) {
      throw new LoomError(`${this.who}: expected FlatParameters { layout, values, grads } (see flattenParameters)`);
    }
    if (values.length < layout.length || grads.length < layout.length) {
      throw new LoomError(`${this.who}: values (${values.length}) and grads (${grads.length}) must hold the layout's ${layout.length} floats`);
    }
    this.flat = flat;
    const names = this.rule.stateNames;
    if (opts.state) {
      if (opts.state.length !== names.length) {
        throw new LoomError(`${this.who}: opts.state has ${opts.state.length} buffers, ${this.kind} needs ${names.length} (${names.join(', ') || 'none'})`);
      }
      opts.state.forEach((buf, i) => {
        if (!(buf instanceof Float32Array) || buf.length < layout.length) {
          throw new LoomError(`${this.who}: opts.state[${i}] (${names[i]}) must be a Float32Array of at least ${layout.length} floats`);
        }
      });
      this.stateBuffers = [...opts.state];
    } else {
      this.stateBuffers = this.rule.initialValues.map((v) => {
        const buf = opts.shared ? new Float32Array(new SharedArrayBuffer(flatBytes(layout))) : new Float32Array(layout.length);
        return v === 0 ? buf : buf.fill(v);
      });
    }
  }

  protected override get who(): string {
    return `FlatOptimizer(${this.kind})`;
  }

  /**
   * One optimizer step over the elements [lo, hi) of the flat buffers: advances stepCount. Workers that
   * split the buffer each call it once per step on their own slice (their counts stay in lockstep).
   * The gradients are read multiplied by gradScale (the clipping factor; the buffer is left as it is).
   */
  updateRange(lo: number, hi: number, gradScale = 1): void {
    this.updateSpans([lo, hi], gradScale, 'updateRange');
  }

  /**
   * One optimizer step over several ranges [ranges[0], ranges[1]), [ranges[2], ranges[3]), ... (ascending,
   * not overlapping): advances stepCount once. With rule.zeroGradientIsNoop, updating only the ranges where
   * the gradient is not zero is bit for bit the update of the whole span.
   */
  updateRanges(ranges: ArrayLike<number>, gradScale = 1): void {
    this.updateSpans(ranges, gradScale, 'updateRanges');
  }

  /** updateRange's and updateRanges' body; `method` names the caller in errors. */
  private updateSpans(ranges: ArrayLike<number>, gradScale: number, method: string): void {
    const { layout, values, grads } = this.flat;
    const who = `${this.who}.${method}`;
    if (ranges.length % 2 !== 0) throw new LoomError(`${who}: ranges come in [lo, hi) pairs, got ${ranges.length} numbers`);
    let previous = 0;
    for (let r = 0; r < ranges.length; r += 2) {
      const lo = ranges[r];
      const hi = ranges[r + 1];
      if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < lo || hi > layout.length) {
        throw new LoomError(`${who}: need integers 0 <= lo <= hi <= ${layout.length}, got [${fmt(lo)}, ${fmt(hi)})`);
      }
      if (lo < previous) throw new LoomError(`${who}: ranges must ascend without overlapping, got [${lo}, ${hi}) after one ending at ${previous}`);
      previous = hi;
    }
    const t = ++this.stepCount;
    const lr = this.lr;
    for (let r = 0; r < ranges.length; r += 2) {
      const lo = ranges[r];
      const hi = ranges[r + 1];
      for (const e of layout.entries) {
        const a = Math.max(lo, e.offset);
        const b = Math.min(hi, e.offset + e.size);
        if (a < b) this.rule.update(values, grads, this.stateBuffers, a, b, this.options, t, lr, gradScale);
      }
    }
  }

  step(): void {
    this.updateRange(0, this.flat.layout.length);
  }

  zeroGrad(): void {
    this.flat.grads.fill(0);
  }

  protected stateSlots(): { name: string; size: number; state: readonly Float32Array[] }[] {
    return this.flat.layout.entries.map((e) => ({
      name: e.name,
      size: e.size,
      state: this.stateBuffers.map((buf) => buf.subarray(e.offset, e.offset + e.size)),
    }));
  }
}
