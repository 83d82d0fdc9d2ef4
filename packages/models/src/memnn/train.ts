/*
 * Training MemN2N on bAbI as Section 4.2 of the paper: SGD without momentum on the summed cross-entropy
 * of batches of 32, gradients clipped to norm 40, lr 0.01 halved every 25 epochs for 100 epochs; linear
 * start (memory softmaxes removed, lr 0.005) for 20 epochs (the official code's rule); random noise in
 * time during training. The model of the epoch with the lowest validation error (then loss) is kept.
 */
import { Generator, LoomError, SGD, clipGradNorm, crossEntropy, noGrad } from '@loom/core';
import { makeBatch, type MemN2NExample } from './batch.js';
import type { MemN2N } from './model.js';
import { argmax } from '../generate.js';

export interface MemN2NTrainConfig {
  /** Epochs with the softmaxes in (after linear start). Default 100. */
  epochs?: number;
  /** Default 0.01. */
  lr?: number;
  /** lr ·= lrDecay at the start of every epoch that is a multiple of this (1-based, as the official code). Default 25. */
  lrDecayEvery?: number;
  /** Default 0.5. */
  lrDecay?: number;
  /** Default 32. */
  batchSize?: number;
  /** Global gradient norm clip. Default 40. */
  maxGradNorm?: number;
  /** Linear start. Default true. */
  linearStart?: boolean;
  /** lr during linear start. Default 0.005. */
  lsLr?: number;
  /** Linear start ends after this many epochs at most (the official code: always 20; 30 jointly). Default 20. */
  lsMaxEpochs?: number;
  /**
   * ...or once the validation loss has not reached a new low for this many epochs ("when the validation
   * loss stopped decreasing"); 0: always lsMaxEpochs, as the official code. Default 0: on bAbI's
   * 100-question validation sets a patience of 3 ended linear start after 4 to 13 epochs, and task 16
   * then failed (54% test error against 0.4% with 20 epochs).
   */
  lsPatience?: number;
  /** Random noise in time (see makeBatch). Default 0.1. */
  timeNoise?: number;
  /** Keep the epoch with the lowest validation error (ties: loss). Default true (needs validation data). */
  selectBest?: boolean;
  /** Shuffling and noise. Default 0. */
  seed?: number;
  /** Examples per batch when evaluating. Default 256. */
  evalBatchSize?: number;
  /**
   * A group per training example (e.g. its bAbI task): each batch is drawn from one group (each group
   * shuffled and cut into batches, then all batches shuffled). Default: none, batches drawn from all
   * examples. Jointly on the 20 bAbI tasks, random batches nearly all hold one of task 3's 50-statement
   * stories and pad every other story to it: batches by task do 4.4 times less embedding work.
   */
  groups?: readonly number[] | null;
  onEpoch?: (log: MemN2NEpochLog) => void;
}

export const MEMN2N_TRAIN_DEFAULTS = {
  epochs: 100,
  lr: 0.01,
  lrDecayEvery: 25,
  lrDecay: 0.5,
  batchSize: 32,
  maxGradNorm: 40,
  linearStart: true,
  lsLr: 0.005,
  lsMaxEpochs: 20,
  lsPatience: 0,
  timeNoise: 0.1,
  selectBest: true,
  seed: 0,
  evalBatchSize: 256,
  groups: null,
} satisfies Omit<Required<MemN2NTrainConfig>, 'onEpoch'>;

export interface MemN2NEpochLog {
  phase: 'linear' | 'softmax';
  /** 1-based within the phase. */
  epoch: number;
  lr: number;
  /** Mean per example (the noisy training batches). */
  trainLoss: number;
  trainError: number;
  /** NaN without validation data. */
  validLoss: number;
  validError: number;
  seconds: number;
}

export interface MemN2NTrainResult {
  history: MemN2NEpochLog[];
  linearEpochs: number;
  /** The softmax-phase epoch whose weights the model holds at the end (the last one without selection). */
  selectedEpoch: number;
  validError: number;
  validLoss: number;
}

export interface MemN2NEvaluation {
  /** Mean cross-entropy per example. */
  loss: number;
  /** Fraction of wrong answers. */
  error: number;
  predictions: number[];
}

/**
 * The batches of successive epochs: `next()` returns one epoch's lists of example indices. Each group
 * (all examples when `groups` is null) is shuffled and cut into batches of `batchSize` (the last may be
 * smaller); with several groups the batches are then shuffled together.
 */
export function epochBatches(n: number, batchSize: number, groups: readonly number[] | null, g: Generator): () => number[][] {
  const shuffle = <T>(a: T[]): T[] => {
    for (let i = a.length - 1; i > 0; i--) {
      const j = g.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const k = groups ? groups[i] : 0;
    (members.get(k) ?? members.set(k, []).get(k)!).push(i);
  }
  return () => {
    const out: number[][] = [];
    for (const idx of members.values()) {
      shuffle(idx);
      for (let at = 0; at < idx.length; at += batchSize) out.push(idx.slice(at, at + batchSize));
    }
    return members.size > 1 ? shuffle(out) : out;
  };
}

/** Loss and error on examples (no noise, no gradient). */
export function evaluateMemN2N(model: MemN2N, examples: readonly MemN2NExample[], batchSize = 256): MemN2NEvaluation {
  const predictions: number[] = [];
  let loss = 0, wrong = 0;
  noGrad(() => {
    for (let at = 0; at < examples.length; at += batchSize) {
      const part = examples.slice(at, at + batchSize);
      const batch = makeBatch(part, { memorySize: model.config.memorySize });
      const logits = model.forward(batch);
      loss += lossSum(model, logits.data, batch.answers.data, part.length);
      const V = model.config.vocabSize;
      for (let b = 0; b < part.length; b++) {
        const p = argmax(logits.data, b * V, V);
        predictions.push(p);
        if (p !== part[b].answer) wrong++;
      }
    }
  });
  const n = Math.max(examples.length, 1);
  return { loss: loss / n, error: wrong / n, predictions };
}

/** Σ_b −log softmax(logits_b)[answer_b], in float64 on the host. */
function lossSum(model: MemN2N, logits: ArrayLike<number>, answers: ArrayLike<number>, B: number): number {
  const V = model.config.vocabSize;
  let total = 0;
  for (let b = 0; b < B; b++) {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[b * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[b * V + v] - mx);
    total += mx + Math.log(s) - logits[b * V + answers[b]];
  }
  return total;
}

/**
 * Trains `model` in place on `train`, validating on `valid` (may be empty: then linear start runs its
 * lsMaxEpochs and the last epoch is kept).
 */
export function trainMemN2N(
  model: MemN2N, train: readonly MemN2NExample[], valid: readonly MemN2NExample[], config: MemN2NTrainConfig = {},
): MemN2NTrainResult {
  const where = 'trainMemN2N';
  const c = { ...MEMN2N_TRAIN_DEFAULTS, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) } as Required<MemN2NTrainConfig>;
  for (const k of ['epochs', 'lrDecayEvery', 'batchSize', 'evalBatchSize'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new LoomError(`${where}: config.${k} must be a positive integer, got ${String(c[k])}`);
  }
  for (const k of ['lsMaxEpochs', 'lsPatience'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new LoomError(`${where}: config.${k} must be an integer ≥ 0, got ${String(c[k])}`);
  }
  for (const k of ['lr', 'lsLr', 'lrDecay', 'maxGradNorm'] as const) {
    if (typeof c[k] !== 'number' || !(c[k] > 0)) throw new LoomError(`${where}: config.${k} must be a positive number, got ${String(c[k])}`);
  }
  if (typeof c.timeNoise !== 'number' || !(c.timeNoise >= 0)) throw new LoomError(`${where}: config.timeNoise must be a number ≥ 0, got ${String(c.timeNoise)}`);
  if (train.length === 0) throw new LoomError(`${where}: 'train' is empty`);

  const g = new Generator(c.seed);
  const opt = new SGD(model, { lr: c.lr });
  const history: MemN2NEpochLog[] = [];
  if (c.groups && c.groups.length !== train.length) throw new LoomError(`${where}: config.groups must hold one group per training example (${train.length}), got ${c.groups.length}`);
  const hasValid = valid.length > 0;
  const batches = epochBatches(train.length, c.batchSize, c.groups, g);

  const epoch = (phase: MemN2NEpochLog['phase'], e: number, lr: number): MemN2NEpochLog => {
    const t0 = performance.now();
    opt.lr = lr;
    model.train();
    let loss = 0, wrong = 0;
    for (const indices of batches()) {
      const part = indices.map((i) => train[i]);
      const batch = makeBatch(part, { memorySize: model.config.memorySize, timeNoise: c.timeNoise, generator: g });
      opt.zeroGrad();
      const logits = model.forward(batch);
      const V = model.config.vocabSize;
      for (let b = 0; b < part.length; b++) if (argmax(logits.data, b * V, V) !== part[b].answer) wrong++;
      const l = crossEntropy(logits, batch.answers, { reduction: 'sum' }); // the official code's (see MemN2N.loss)
      loss += l.item();
      l.backward();
      const norm = clipGradNorm(model, c.maxGradNorm);
      if (Number.isFinite(norm)) opt.step();
    }
    const v = hasValid ? evaluateMemN2N(model, valid, c.evalBatchSize) : { loss: NaN, error: NaN };
    const log: MemN2NEpochLog = {
      phase, epoch: e, lr, trainLoss: loss / train.length, trainError: wrong / train.length,
      validLoss: v.loss, validError: v.error, seconds: (performance.now() - t0) / 1000,
    };
    history.push(log);
    c.onEpoch?.(log);
    return log;
  };

  // Linear start: no memory softmaxes, for lsMaxEpochs (or until the validation loss stops decreasing).
  let linearEpochs = 0;
  if (c.linearStart && c.lsMaxEpochs > 0) {
    model.linearStart = true;
    let best = Infinity, bad = 0;
    try {
      for (let e = 1; e <= c.lsMaxEpochs; e++) {
        const log = epoch('linear', e, c.lsLr);
        linearEpochs = e;
        if (!hasValid || c.lsPatience === 0) continue;
        if (log.validLoss < best) { best = log.validLoss; bad = 0; } else if (++bad >= c.lsPatience) break;
      }
    } finally {
      model.linearStart = false;
    }
  }

  let lr = c.lr;
  let kept: { epoch: number; error: number; loss: number; values: Float32Array[] | null } = { epoch: 0, error: Infinity, loss: Infinity, values: null };
  const params = model.parameters();
  for (let e = 1; e <= c.epochs; e++) {
    if (e % c.lrDecayEvery === 0) lr *= c.lrDecay;
    const log = epoch('softmax', e, lr);
    const better = log.validError < kept.error || (log.validError === kept.error && log.validLoss < kept.loss);
    if (!c.selectBest || !hasValid) kept = { epoch: e, error: log.validError, loss: log.validLoss, values: null };
    else if (better) kept = { epoch: e, error: log.validError, loss: log.validLoss, values: params.map((p) => Float32Array.from(p.data)) };
  }
  if (kept.values) params.forEach((p, i) => (p.data as Float32Array).set(kept.values![i]));
  return { history, linearEpochs, selectedEpoch: kept.epoch, validError: kept.error, validLoss: kept.loss };
}
