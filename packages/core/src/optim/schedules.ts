/*
 * Learning-rate schedules. A schedule holds a counter, sets `optimizer.lr` when constructed (the rate
 * for count 0) and again on every `step()`, and saves its counter in a plain state dict that goes into
 * checkpoints. Call `step()` once per unit (`unit` says which):
 *
 *   per epoch: StepLR, ExponentialLR, EpochDecayLR (Zaremba et al.), ReduceLROnPlateau (with the epoch's
 *              validation metric)
 *   per step:  WarmupCosine (after each optimizer step)
 *
 * The closed-form schedules compute lr = baseLr · f(count), with baseLr the optimizer's lr when the
 * schedule was made; they match torch's StepLR, ExponentialLR, LambdaLR and CosineAnnealingLR sequences
 * (test/optim.test.ts). ReduceLROnPlateau follows torch's: it multiplies whatever lr the optimizer has.
 */
import { LoomError } from '../errors.js';
import { fmt } from './fmt.js';

/** Anything whose learning rate a schedule sets: every Optimizer (per-parameter or flat). */
export interface HasLr {
  lr: number;
}

export type ScheduleKind = 'step' | 'exponential' | 'epochDecay' | 'warmupCosine' | 'plateau';

/** A schedule's state as plain data. `last` counts the step() calls so far. */
export type ScheduleState =
  | { kind: 'step' | 'exponential' | 'epochDecay' | 'warmupCosine'; baseLr: number; last: number }
  | { kind: 'plateau'; last: number; best: number | null; numBadEpochs: number; cooldownCounter: number };

export abstract class LRSchedule {
  abstract readonly kind: ScheduleKind;
  /** What one step() stands for. */
  abstract readonly unit: 'epoch' | 'step';
  /** step() calls so far: epochs (or steps) completed. */
  last = 0;

  protected constructor(readonly optimizer: HasLr) {}

  /** Advances by one epoch (or step) and sets the optimizer's lr; returns it. */
  abstract step(metric?: number): number;
  abstract stateDict(): ScheduleState;
  /** Restores the counter (and the schedule's own state); the optimizer's lr comes from its own state dict. */
  abstract loadStateDict(state: ScheduleState): void;

  protected get who(): string {
    return this.constructor.name;
  }

  protected checkState(state: ScheduleState): void {
    if (typeof state !== 'object' || state === null || state.kind !== this.kind) {
      throw new LoomError(`${this.who}.loadStateDict: expected a '${this.kind}' schedule state, got ${fmt(state && typeof state === 'object' ? state.kind : state)}`);
    }
    if (!Number.isInteger(state.last) || state.last < 0) throw new LoomError(`${this.who}.loadStateDict: last must be a non-negative integer, got ${fmt(state.last)}`);
  }
}

/** lr = baseLr · factor(count): stateless apart from the counter. */
abstract class ClosedFormSchedule extends LRSchedule {
  baseLr: number;

  protected constructor(optimizer: HasLr) {
    super(optimizer);
    this.baseLr = optimizer.lr;
  }

  /** The lr after `t` step() calls. */
  abstract lrAt(t: number): number;

  /** Call at the end of each subclass constructor: sets the lr for count 0, as torch's schedulers do. */
  protected start(): void {
    this.optimizer.lr = this.lrAt(0);
  }

  step(): number {
    this.last += 1;
    return (this.optimizer.lr = this.lrAt(this.last));
  }

  stateDict(): ScheduleState {
    return { kind: this.kind as 'step', baseLr: this.baseLr, last: this.last };
  }

  loadStateDict(state: ScheduleState): void {
    this.checkState(state);
    const base = (state as { baseLr: number }).baseLr;
    if (typeof base !== 'number' || !Number.isFinite(base) || base < 0) throw new LoomError(`${this.who}.loadStateDict: baseLr must be a non-negative number, got ${fmt(base)}`);
    this.baseLr = base;
    this.last = state.last;
  }
}

/** Per epoch. lr = baseLr · gamma^⌊epoch / stepSize⌋ (torch's StepLR). */
export class StepLR extends ClosedFormSchedule {
  readonly kind = 'step';
  readonly unit = 'epoch';
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: HasLr, options: { stepSize: number; gamma?: number }) {
    super(optimizer);
    const o = checkOptions('StepLR', options, { gamma: 0.1 }, ['stepSize', 'gamma']);
    this.stepSize = int('StepLR', o, 'stepSize', 1);
    this.gamma = positive('StepLR', o, 'gamma');
    this.start();
  }

  lrAt(epoch: number): number {
    return this.baseLr * this.gamma ** Math.floor(epoch / this.stepSize);
  }
}

/** Per epoch. lr = baseLr · gamma^epoch (torch's ExponentialLR). */
export class ExponentialLR extends ClosedFormSchedule {
  readonly kind = 'exponential';
  readonly unit = 'epoch';
  readonly gamma: number;

  constructor(optimizer: HasLr, options: { gamma: number }) {
    super(optimizer);
    const o = checkOptions('ExponentialLR', options, {}, ['gamma']);
    this.gamma = positive('ExponentialLR', o, 'gamma');
    this.start();
  }

  lrAt(epoch: number): number {
    return this.baseLr * this.gamma ** epoch;
  }
}

/**
 * Per epoch. The step decay of Zaremba et al. (2014): the lr stays at baseLr for the first
 * `constantEpochs` epochs, then is multiplied by `factor` at the start of every later epoch:
 * lr(epoch e, counting from 0) = baseLr · factor^max(e + 1 − constantEpochs, 0).
 * Their configurations: small { constantEpochs: 4, factor: 0.5 } (lr 1, 13 epochs); medium
 * { constantEpochs: 6, factor: 1 / 1.2 } (lr 1, 39 epochs); large { constantEpochs: 14, factor: 1 / 1.15 }
 * (lr 1, 55 epochs).
 */
export class EpochDecayLR extends ClosedFormSchedule {
  readonly kind = 'epochDecay';
  readonly unit = 'epoch';
  readonly constantEpochs: number;
  readonly factor: number;

  constructor(optimizer: HasLr, options: { constantEpochs: number; factor: number }) {
    super(optimizer);
    const o = checkOptions('EpochDecayLR', options, {}, ['constantEpochs', 'factor']);
    this.constantEpochs = int('EpochDecayLR', o, 'constantEpochs', 0);
    this.factor = positive('EpochDecayLR', o, 'factor');
    this.start();
  }

  lrAt(epoch: number): number {
    return this.baseLr * this.factor ** Math.max(epoch + 1 - this.constantEpochs, 0);
  }
}

/**
 * Per step. Linear warmup then cosine decay:
 *   s < warmupSteps:               lr = baseLr · (s + 1) / warmupSteps   (never a step at lr 0)
 *   warmupSteps ≤ s < totalSteps:  lr = minLr + (baseLr − minLr) · ½(1 + cos(π · (s − warmupSteps) / (totalSteps − warmupSteps)))
 *   s ≥ totalSteps:                lr = minLr
 * where s counts the optimizer steps already taken. With warmupSteps = 0 this is torch's
 * CosineAnnealingLR(T_max = totalSteps, eta_min = minLr), held at minLr afterwards.
 */
export class WarmupCosine extends ClosedFormSchedule {
  readonly kind = 'warmupCosine';
  readonly unit = 'step';
  readonly warmupSteps: number;
  readonly totalSteps: number;
  readonly minLr: number;

  constructor(optimizer: HasLr, options: { warmupSteps: number; totalSteps: number; minLr?: number }) {
    super(optimizer);
    const o = checkOptions('WarmupCosine', options, { minLr: 0 }, ['warmupSteps', 'totalSteps', 'minLr']);
    this.warmupSteps = int('WarmupCosine', o, 'warmupSteps', 0);
    this.totalSteps = int('WarmupCosine', o, 'totalSteps', this.warmupSteps + 1);
    this.minLr = nonNegative('WarmupCosine', o, 'minLr');
    if (this.minLr > this.baseLr) throw new LoomError(`WarmupCosine: options.minLr (${this.minLr}) must not exceed the optimizer's lr (${this.baseLr})`);
    this.start();
  }

  lrAt(s: number): number {
    const { warmupSteps: w, totalSteps: total, minLr, baseLr } = this;
    if (s < w) return (baseLr * (s + 1)) / w;
    if (s >= total) return minLr;
    return minLr + (baseLr - minLr) * 0.5 * (1 + Math.cos((Math.PI * (s - w)) / (total - w)));
  }
}

export interface PlateauOptions {
  /** 'min': lower metric is better (a loss); 'max': higher is better (an accuracy). */
  mode: 'min' | 'max';
  /** lr ·= factor on a plateau; in (0, 1). */
  factor: number;
  /** Epochs without improvement tolerated; the lr drops on the next one. */
  patience: number;
  /** Improvement needed to count: relative (best · (1 ∓ threshold)) or absolute (best ∓ threshold). */
  threshold: number;
  thresholdMode: 'rel' | 'abs';
  /** Epochs to wait after a drop before counting bad epochs again. */
  cooldown: number;
  /** The lr never goes below this. */
  minLr: number;
  /** A drop smaller than this is not applied. */
  eps: number;
}

export const PLATEAU_DEFAULTS: PlateauOptions = {
  mode: 'min',
  factor: 0.1,
  patience: 10,
  threshold: 1e-4,
  thresholdMode: 'rel',
  cooldown: 0,
  minLr: 0,
  eps: 1e-8,
};

/**
 * Per epoch, with the epoch's validation metric: torch's ReduceLROnPlateau. A NaN metric never counts
 * as an improvement.
 */
export class ReduceLROnPlateau extends LRSchedule {
  readonly kind = 'plateau';
  readonly unit = 'epoch';
  readonly options: Readonly<PlateauOptions>;
  /** Best metric so far; null before the first. */
  best: number | null = null;
  numBadEpochs = 0;
  cooldownCounter = 0;

  constructor(optimizer: HasLr, options: Partial<PlateauOptions> = {}) {
    super(optimizer);
    const who = 'ReduceLROnPlateau';
    const o = checkOptions(who, options, PLATEAU_DEFAULTS, Object.keys(PLATEAU_DEFAULTS));
    if (o.mode !== 'min' && o.mode !== 'max') throw new LoomError(`${who}: options.mode must be 'min' or 'max', got ${fmt(o.mode)}`);
    if (o.thresholdMode !== 'rel' && o.thresholdMode !== 'abs') throw new LoomError(`${who}: options.thresholdMode must be 'rel' or 'abs', got ${fmt(o.thresholdMode)}`);
    const factor = positive(who, o, 'factor');
    if (factor >= 1) throw new LoomError(`${who}: options.factor must be below 1, got ${factor}`);
    this.options = {
      mode: o.mode,
      factor,
      patience: int(who, o, 'patience', 0),
      threshold: nonNegative(who, o, 'threshold'),
      thresholdMode: o.thresholdMode,
      cooldown: int(who, o, 'cooldown', 0),
      minLr: nonNegative(who, o, 'minLr'),
      eps: nonNegative(who, o, 'eps'),
    };
  }

  private isBetter(a: number, bestOrNull: number | null): boolean {
    const { mode, threshold, thresholdMode } = this.options;
    const best = bestOrNull ?? (mode === 'min' ? Infinity : -Infinity); // torch starts from the worst value
    if (mode === 'min') return thresholdMode === 'rel' ? a < best * (1 - threshold) : a < best - threshold;
    return thresholdMode === 'rel' ? a > best * (1 + threshold) : a > best + threshold;
  }

  step(metric?: number): number {
    if (typeof metric !== 'number') throw new LoomError(`ReduceLROnPlateau.step: needs the epoch's metric (a number), got ${fmt(metric)}`);
    this.last += 1;
    if (this.isBetter(metric, this.best)) {
      this.best = metric;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs += 1;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.numBadEpochs = 0; // bad epochs during cooldown do not count
    }
    if (this.numBadEpochs > this.options.patience) {
      const old = this.optimizer.lr;
      const next = Math.max(old * this.options.factor, this.options.minLr);
      if (old - next > this.options.eps) this.optimizer.lr = next;
      this.cooldownCounter = this.options.cooldown;
      this.numBadEpochs = 0;
    }
    return this.optimizer.lr;
  }

  stateDict(): ScheduleState {
    return { kind: 'plateau', last: this.last, best: this.best, numBadEpochs: this.numBadEpochs, cooldownCounter: this.cooldownCounter };
  }

  loadStateDict(state: ScheduleState): void {
    this.checkState(state);
    const s = state as Extract<ScheduleState, { kind: 'plateau' }>;
    const bad = [
      s.best !== null && typeof s.best !== 'number' ? `best must be a number or null, got ${fmt(s.best)}` : '',
      !Number.isInteger(s.numBadEpochs) || s.numBadEpochs < 0 ? `numBadEpochs must be a non-negative integer, got ${fmt(s.numBadEpochs)}` : '',
      !Number.isInteger(s.cooldownCounter) || s.cooldownCounter < 0 ? `cooldownCounter must be a non-negative integer, got ${fmt(s.cooldownCounter)}` : '',
    ].filter(Boolean);
    if (bad.length > 0) throw new LoomError(`ReduceLROnPlateau.loadStateDict: ${bad.join('; ')}`);
    this.last = s.last;
    this.best = s.best;
    this.numBadEpochs = s.numBadEpochs;
    this.cooldownCounter = s.cooldownCounter;
  }
}

// ---- option checks, naming the schedule and the key ----

function checkOptions<T extends object>(who: string, options: T, defaults: object, known: readonly string[]): Record<string, any> {
  if (typeof options !== 'object' || options === null) throw new LoomError(`${who}: options must be an object, got ${fmt(options)}`);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new LoomError(`${who}: unknown option '${key}' (known: ${known.join(', ')})`);
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...defaults, ...defined };
}

function int(who: string, o: Record<string, unknown>, key: string, min: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new LoomError(`${who}: options.${key} must be an integer >= ${min}, got ${fmt(v)}`);
  return v;
}

function positive(who: string, o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new LoomError(`${who}: options.${key} must be a positive number, got ${fmt(v)}`);
  return v;
}

function nonNegative(who: string, o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new LoomError(`${who}: options.${key} must be a non-negative number, got ${fmt(v)}`);
  return v;
}
