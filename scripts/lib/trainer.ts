/*
 * What `train` needs from a training loop, whoever runs it: the steps of truncated BPTT over the token
 * file's lanes, the optimizer, clipping and schedule, a validation pass at each epoch end (and every
 * train.evalEvery steps), checkpoints, resuming from one, and stopping cleanly when asked. The script
 * watches it through TrainHooks (progress bar, metrics.jsonl) and gets back an evaluation of any token
 * file under the trained parameters (for the test split) and the trained model (for the sample).
 */
import type { RNNLanguageModel } from '@loom/models';
import * as os from 'node:os';
import { ConfigError, type TrainConfig } from './config.js';
import type { PreparedCorpus, TokenizerSpec } from './corpus.js';
import type { EvalResult } from './lm.js';

export interface StepEvent {
  /** Optimizer steps taken so far in the run (from 1). */
  step: number;
  /** From 1. */
  epoch: number;
  /** Window index within the epoch (from 0) and windows per epoch. */
  window: number;
  windows: number;
  /** Mean training loss of this step over the global batch. */
  loss: number;
  /** The lr this step used. */
  lr: number;
  /** Training tokens consumed so far in the run (T·B per step over all workers). */
  tokens: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Seconds of training so far in the run (resumes add to it). */
  time: number;
}

export interface EvalEvent {
  step: number;
  epoch: number;
  split: 'valid';
  loss: number;
  ppl: number;
  tokens: number;
  seconds: number;
  /** Seconds of training so far in the run (resumes add to it). */
  time: number;
}

export interface TrainHooks {
  onStep(e: StepEvent): void;
  onEval(e: EvalEvent): void;
  onCheckpoint(e: { step: number; path: string }): void;
  /** A line worth printing (workers started, the batch split, a resume). */
  onInfo(line: string): void;
}

export interface TrainRequest {
  config: TrainConfig;
  corpus: PreparedCorpus;
  /** Where checkpoints go. */
  checkpointDir: string;
  hooks: TrainHooks;
  /** Aborted on SIGINT: stop after the current step, checkpoint, return. */
  signal: AbortSignal;
  /** Extra data stored in every checkpoint (the tokenizer, so a checkpoint alone can sample). */
  checkpointExtra: { tokenizer: TokenizerSpec };
}

export interface TrainOutcome {
  /** The trained model (on the main thread), for the sample. */
  model: RNNLanguageModel;
  /**
   * Perplexity of a token file under the trained parameters, evaluated as the validation set is (by the
   * training workers, each taking its lanes). Workers are held from the first call until close().
   */
  evaluate(file: string, options: { batchSize: number; bptt: number }): Promise<EvalResult>;
  /** Releases what evaluate() holds; call it once done (also when nothing was evaluated). */
  close(): Promise<void>;
  step: number;
  epoch: number;
  stopped: 'completed' | 'maxSteps' | 'interrupted';
  /** The last checkpoint written. */
  checkpoint: string | null;
  /** Seconds spent training (this process and the runs it resumed). */
  seconds: number;
  tokens: number;
  workers: number;
}

/** The data position a checkpoint resumes from: the next window to run. */
export interface Position {
  /** From 0. */
  epoch: number;
  window: number;
}

/** Steps of the whole run: every epoch's windows, capped by train.maxSteps. */
export function plannedSteps(config: TrainConfig, windowsPerEpoch: number): number {
  const all = config.train.epochs * windowsPerEpoch;
  return config.train.maxSteps > 0 ? Math.min(all, config.train.maxSteps) : all;
}

/**
 * The number of workers: train.workers, or (0) the core count lowered to the largest count that divides
 * both the training batch and the evaluation batch (every worker takes the same number of lanes).
 */
export function resolveWorkers(config: TrainConfig, cores = os.availableParallelism()): { workers: number; note: string } {
  const { batchSize: B, evalBatchSize: E, workers } = config.train;
  if (workers > 0) {
    if (B % workers !== 0) {
      throw new ConfigError(`train.batchSize ${B} is not divisible by train.workers ${workers}: every worker takes batchSize / workers lanes, so the batch must split evenly (try --train.workers=${largestDivisor([B, E], workers)} or a batchSize that is a multiple of ${workers})`);
    }
    if (E % workers !== 0) {
      throw new ConfigError(`train.evalBatchSize ${E} is not divisible by train.workers ${workers}: every worker evaluates evalBatchSize / workers lanes (try --train.evalBatchSize=${Math.ceil(E / workers) * workers})`);
    }
    return { workers, note: 'train.workers' };
  }
  const n = largestDivisor([B, E], cores);
  return { workers: n, note: n === cores ? `the core count` : `the core count is ${cores}; ${n} is the largest count that divides batchSize ${B} and evalBatchSize ${E}` };
}

function largestDivisor(of: number[], atMost: number): number {
  for (let n = atMost; n > 1; n--) if (of.every((x) => x % n === 0)) return n;
  return 1;
}
