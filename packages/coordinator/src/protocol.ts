/*
 * Everything the coordinator and its workers say to each other, and everything the trainer reports, in
 * one file.
 *
 * Two channels:
 *
 * 1. The control surface (comlink over a MessagePort per worker; payloads that go into checkpoints are
 *    msgpackr bytes): WorkerControl below. Used to start, evaluate, snapshot, restore and stop; never per
 *    step.
 *
 * 2. The hot path (shared memory, shared-memory.ts): one step, with no message posted:
 *
 *      coordinator                          worker r (inside WorkerControl.run())
 *      write STEP, EPOCH, WINDOW, FLAGS,
 *        LR, OPT_STEP; DONE = 0;
 *        GO += 1; notify(GO)      ───────▶  wakes from Atomics.wait(GO)
 *                                           forward + backward of its micro-batches into grads[r]
 *                                           barrier 'gradients ready'
 *                                           reduce-scatter slice r into grads[0] (rank order), ·1/(N·A),
 *                                             sums of squares per chunk
 *                                           barrier 'norm ready'
 *                                           norm = √Σ chunks (same on all); clip slice r; optimizer
 *                                             update of slice r (values and state, in place)
 *      Atomics.waitAsync(DONE)    ◀───────  DONE += 1 (the last one notifies)
 *      read losses and timings from scalars
 *
 *    PAUSE (with GO) makes run() return, so that the control surface can be used (checkpoints,
 *    evaluation); a later run() continues. ABORT wakes everyone and ends run() with WorkerAborted.
 */
import type { GeneratorState, OptimizerKind } from '@loom/core';
import type { VariableLengthOptions } from '@loom/data';
import type { FaultInjection } from './config.js';
import type { SharedBuffers } from './shared-memory.js';
import type { PlainState } from './model.js';

// ---------------------------------------------------------------------------------------------
// Control surface
// ---------------------------------------------------------------------------------------------

/** A token source as a worker receives it: a file path, or ids in shared memory (no copy per worker). */
export type WorkerTokenSource = { kind: 'file'; path: string } | { kind: 'shared'; ids: Int32Array };

/** What a worker needs to build its replica of the model and its share of the data. */
export interface WorkerInit {
  rank: number;
  /** N */
  workers: number;
  buffers: SharedBuffers;
  /** The model module, already resolved to a file: URL by the coordinator. */
  model: { url: string; export: string; config: unknown };
  /** The parameter names and offsets the coordinator laid out; the worker checks its replica matches. */
  layout: { name: string; offset: number; size: number }[];
  backend: string;
  /** Imported before setBackend(backend): where a plug-in backend registers itself (a file: URL). */
  backendModule: string | null;
  /** Draw each step's host arrays from a StoragePool (TrainerConfig.recycleStorage). */
  recycleStorage: boolean;
  /** Reduce and update only the chunks of the gradient that are non-zero in some worker (TrainerConfig.skipZeroGradients). */
  skipZeroGradients: boolean;
  seed: number;
  train: WorkerTokenSource;
  /** B (all workers), the window length, the micro-batches per worker. */
  globalBatch: number;
  bptt: number;
  accumulation: number;
  variableLength: VariableLengthOptions | null;
  optimizer: { kind: OptimizerKind; options: Record<string, unknown> };
  /** How long a barrier may wait before the worker names the missing workers and gives up. */
  barrierTimeoutMs: number;
  /** Set only in the attempts where the testing aid fires. */
  faultInjection: Omit<FaultInjection, 'attempts'> | null;
}

/** What init() answers. */
export interface WorkerReady {
  rank: number;
  /** Lanes per micro-batch, micro-batches, and windows in epoch 0 (the same on every worker). */
  lanes: number;
  microBatches: number;
  windows: number;
}

/** A worker's evaluation share: sums, so the coordinator adds the workers' shares in rank order. */
export interface EvalShare {
  rank: number;
  /** Σ over windows of (mean loss × tokens), float64. */
  lossSum: number;
  tokens: number;
}

/** What snapshot() packs with msgpackr and restore() takes back: a worker's part of a checkpoint. */
export interface WorkerSnapshot {
  rank: number;
  /** The carried hidden state of each micro-batch (null: zero state, as at the start of an epoch). */
  hidden: (PlainState | null)[];
  /** Generator states by name ('default', 'model.generator', ...). */
  generators: Record<string, GeneratorState>;
}

/** The control surface of one worker (exposed with comlink). */
export interface WorkerControl {
  /** Builds the model replica on the shared parameters, the data shard and the optimizer. */
  init(init: WorkerInit): Promise<WorkerReady>;
  /** Runs steps as the coordinator hands them out through shared memory, until PAUSE. */
  run(): Promise<'paused'>;
  /** Mean loss sums over this worker's lanes of a validation stream (from zero state, no gradients). */
  evaluate(request: { source: WorkerTokenSource; batch: number; bptt: number }): Promise<EvalShare>;
  /** msgpackr bytes of a WorkerSnapshot. */
  snapshot(): Promise<Uint8Array>;
  /** Takes back what snapshot() gave (possibly in an earlier process). */
  restore(snapshot: Uint8Array): Promise<void>;
  /** Ends the worker's task; the thread goes back to the pool. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// What the trainer reports: one union of events (callbacks and the async iterator yield these)
// ---------------------------------------------------------------------------------------------

/** One worker's time in a step, in milliseconds. */
export interface WorkerTiming {
  rank: number;
  /** Forward and backward of its micro-batches. */
  msCompute: number;
  /** Waiting at the two barriers. */
  msWait: number;
  /** Its part of the reduce-scatter (sum, average, sums of squares). */
  msReduce: number;
  /** Clipping and the optimizer update of its slice. */
  msUpdate: number;
}

export interface StartEvent {
  type: 'start';
  workers: number;
  globalBatch: number;
  lanesPerWorker: number;
  accumulation: number;
  lanesPerMicroBatch: number;
  bptt: number;
  parameters: number;
  /** The first step that will run (1, or the step after a resumed checkpoint). */
  fromStep: number;
  /** Training tokens and seconds before fromStep: 0, or what the resumed checkpoint counted (see TrainResult). */
  priorTokens: number;
  priorSeconds: number;
}

export interface StepEvent {
  type: 'step';
  step: number;
  epoch: number;
  /** The window of the epoch this step trained on. */
  window: number;
  /** Mean cross-entropy over the step's tokens (all workers). */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  lr: number;
  /** Window length and tokens over all workers. */
  T: number;
  tokens: number;
  /** Wall time of the step seen by the coordinator (GO to DONE). */
  ms: number;
  tokensPerSec: number;
  /**
   * The fraction of the gradient (in chunks of CHUNK floats) that was non-zero in some worker, so reduced;
   * the rest was skipped (TrainerConfig.skipZeroGradients). 1 when nothing is skipped.
   */
  reducedFraction: number;
  workers: WorkerTiming[];
}

/** A step whose loss or gradient was not finite: nothing was updated (faults.onNonFinite 'skip'). */
export interface SkipEvent {
  type: 'skip';
  step: number;
  epoch: number;
  window: number;
  loss: number;
  gradNorm: number;
  reason: string;
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  epoch: number;
  loss: number;
  perplexity: number;
  tokens: number;
}

export interface EpochEvent {
  type: 'epoch';
  epoch: number;
  step: number;
  /** Mean training loss of the epoch's steps that ran in this process. */
  trainLoss: number;
  lr: number;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  path: string;
  ms: number;
}

/**
 * A worker fault; `restarting` says whether the trainer restarts from the last checkpoint. The steps after
 * `resumeFrom` then run again, but their events (step, skip, eval, epoch) are not emitted a second time:
 * every step is reported once.
 */
export interface FaultEvent {
  type: 'fault';
  report: FaultReport;
  attempt: number;
  restarting: boolean;
  /** The step training goes back to (the last checkpoint's), when restarting. */
  resumeFrom: number | null;
  /**
   * The checkpoint file that step was saved to (or resumed from); null when there is none, because no
   * checkpoint is configured (or none was saved yet): the restart goes back to the start of this run.
   */
  checkpoint: string | null;
}

export interface StoppedEvent {
  type: 'stopped';
  step: number;
  reason: 'SIGINT' | 'stop()';
  /** The checkpoint saved on the way out, if checkpoints are configured. */
  checkpoint: string | null;
}

export interface DoneEvent {
  type: 'done';
  step: number;
  epoch: number;
}

export type TrainerEvent =
  | StartEvent | StepEvent | SkipEvent | EvalEvent | EpochEvent | CheckpointEvent | FaultEvent | StoppedEvent | DoneEvent;

/** What went wrong with which worker. */
export interface FaultReport {
  kind: 'error' | 'exit' | 'timeout' | 'nonfinite' | 'start';
  /** The worker at fault (the first one, when several). */
  rank: number;
  step: number;
  /** What that worker was doing ('computing', "at barrier 'gradients ready'", ...). */
  phase: string;
  /** One line that names the worker and what happened. */
  message: string;
  /** The worker's error stack, when it threw. */
  stack?: string;
}
