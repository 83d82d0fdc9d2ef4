/*
 * Optimizer options: PyTorch's names in camelCase, one defaults object beside each type, validated at
 * the boundary with messages that name the optimizer and the key. Unknown keys are errors (a misspelt
 * `weightDecy` would otherwise be silently ignored).
 */
import { LoomError } from '../errors.js';
import { fmt } from './fmt.js';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw' | 'adagrad';

export interface SGDOptions {
  /** Learning rate; required, as in torch (there is no sensible default). */
  lr: number;
  momentum: number;
  /** Scales the new gradient's share of the momentum buffer by (1 − dampening). */
  dampening: number;
  /** Nesterov momentum; needs momentum > 0 and dampening = 0. */
  nesterov: boolean;
  /** L2 penalty, added to the gradient. */
  weightDecay: number;
}

export const SGD_DEFAULTS: Omit<SGDOptions, 'lr'> = {
  momentum: 0,
  dampening: 0,
  nesterov: false,
  weightDecay: 0,
};

/** Adam and AdamW share options; only weightDecay's meaning and default differ. */
export interface AdamOptions {
  lr: number;
  /** Decay rates of the first and second moment averages, each in [0, 1). */
  betas: [number, number];
  /** Added to √v̂ (after bias correction) for numerical stability. */
  eps: number;
  /** Adam: L2 penalty added to the gradient. AdamW: decoupled decay, p ·= 1 − lr·weightDecay. */
  weightDecay: number;
  /** Normalise by the running maximum of v (Reddi et al., 2018). */
  amsgrad: boolean;
}

export const ADAM_DEFAULTS: AdamOptions = {
  lr: 1e-3,
  betas: [0.9, 0.999],
  eps: 1e-8,
  weightDecay: 0,
  amsgrad: false,
};

export const ADAMW_DEFAULTS: AdamOptions = { ...ADAM_DEFAULTS, weightDecay: 1e-2 };

export interface AdagradOptions {
  lr: number;
  /** The step size at step t is lr / (1 + (t − 1)·lrDecay). */
  lrDecay: number;
  weightDecay: number;
  /** What the sum of squared gradients starts at. */
  initialAccumulatorValue: number;
  eps: number;
}

export const ADAGRAD_DEFAULTS: AdagradOptions = {
  lr: 1e-2,
  lrDecay: 0,
  weightDecay: 0,
  initialAccumulatorValue: 0,
  eps: 1e-10,
};

/** Resolved options by kind. */
export interface OptionsByKind {
  sgd: SGDOptions;
  adam: AdamOptions;
  adamw: AdamOptions;
  adagrad: AdagradOptions;
}

/** What a constructor accepts: every key optional except SGD's lr. */
export type OptionsInput<K extends OptimizerKind> = K extends 'sgd' ? Partial<SGDOptions> & { lr: number } : Partial<OptionsByKind[K]>;

export const OPTIMIZER_NAMES: Record<OptimizerKind, string> = { sgd: 'SGD', adam: 'Adam', adamw: 'AdamW', adagrad: 'Adagrad' };

const DEFAULTS: { [K in OptimizerKind]: Partial<OptionsByKind[K]> } = {
  sgd: SGD_DEFAULTS,
  adam: ADAM_DEFAULTS,
  adamw: ADAMW_DEFAULTS,
  adagrad: ADAGRAD_DEFAULTS,
};

const KEYS: { [K in OptimizerKind]: readonly (keyof OptionsByKind[K])[] } = {
  sgd: ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay'],
  adam: ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad'],
  adamw: ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad'],
  adagrad: ['lr', 'lrDecay', 'weightDecay', 'initialAccumulatorValue', 'eps'],
};

/** Fills in defaults and validates; throws a LoomError naming the optimizer and the key. */
export function resolveOptions<K extends OptimizerKind>(kind: K, input: OptionsInput<K>): OptionsByKind[K] {
  const who = OPTIMIZER_NAMES[kind];
  if (typeof input !== 'object' || input === null) throw new LoomError(`${who}: options must be an object, got ${String(input)}`);
  const known = KEYS[kind] as readonly string[];
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) throw new LoomError(`${who}: unknown option '${key}' (known: ${known.join(', ')})`);
  }
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const o = { ...DEFAULTS[kind], ...defined } as Record<string, unknown>;
  const num = (key: string, ok: (v: number) => boolean, what: string): void => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new LoomError(`${who}: options.${key} must be ${what}, got ${fmt(v)}`);
  };
  const bool = (key: string): void => {
    if (typeof o[key] !== 'boolean') throw new LoomError(`${who}: options.${key} must be a boolean, got ${fmt(o[key])}`);
  };
  if (o.lr === undefined) throw new LoomError(`${who}: options.lr is required`);
  num('lr', (v) => v > 0, 'a positive number');
  num('weightDecay', (v) => v >= 0, 'a non-negative number');
  if (kind === 'sgd') {
    num('momentum', (v) => v >= 0, 'a non-negative number');
    num('dampening', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
    bool('nesterov');
    if (o.nesterov && (o.momentum === 0 || o.dampening !== 0)) {
      throw new LoomError(`${who}: options.nesterov needs options.momentum > 0 and options.dampening = 0, got momentum ${fmt(o.momentum)}, dampening ${fmt(o.dampening)}`);
    }
  } else if (kind === 'adam' || kind === 'adamw') {
    const b = o.betas;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1)) {
      throw new LoomError(`${who}: options.betas must be two numbers in [0, 1), got ${fmt(b)}`);
    }
    o.betas = [b[0], b[1]]; // a copy: the caller's array must not change the resolved options later
    num('eps', (v) => v >= 0, 'a non-negative number');
    bool('amsgrad');
  } else {
    num('lrDecay', (v) => v >= 0, 'a non-negative number');
    num('initialAccumulatorValue', (v) => v >= 0, 'a non-negative number');
    num('eps', (v) => v >= 0, 'a non-negative number');
  }
  return o as unknown as OptionsByKind[K];
}
