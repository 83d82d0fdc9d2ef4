/*
 * The memory every worker shares with the coordinator (the main thread) and with each other. Everything
 * a training step needs to exchange lives here, so the hot path is loads, stores and Atomics on these
 * buffers: no message is posted per step.
 *
 *   values   Float32[L]        the parameters in flattenParameters() layout (namedParameters() order,
 *                              each parameter 16-float aligned). Every worker's model reads them in
 *                              place; after the sharded update every worker sees the new values, so no
 *                              all-gather is needed.
 *   grads    Float32[N × L]    worker r's gradient at [r·L, (r+1)·L). After the reduce-scatter,
 *                              grads[0·L ..) holds the reduced (summed, then averaged) gradient for all
 *                              slices; the optimizer reads it there.
 *   state    Float32[k × L]    the optimizer's per-element state (k = rule.stateNames.length, e.g.
 *                              Adam's expAvg and expAvgSq), same layout; each worker updates only its slice.
 *   nonzero  Uint8[N × C]      nonzero[r·C + c] = 1 when chunk c of worker r's gradient is not all zero this
 *                              step (skipZeroGradients): the reduce and the update skip the chunks that are
 *                              zero in every worker
 *   control  Int32[CONTROL_WORDS + 3N]   command, barrier and progress words (Ctl below)
 *   scalars  Float64[SCALARS + METRICS·N + C]
 *                              lr and step arguments, per-worker losses and timings, then one partial
 *                              sum of squares per chunk of the reduced gradient (for global-norm clipping)
 *
 *   the flat range [0, L) in chunks of CHUNK floats, and in N slices of whole chunks:
 *
 *   | chunk 0 | chunk 1 | chunk 2 | chunk 3 | chunk 4 | chunk 5 | chunk 6 |...| chunk C-1 |
 *   |<------ slice 0 (worker 0) ------>|<------ slice 1 (worker 1) ------>|...|
 *
 * Worker r reduces, clips and updates only slice r, so the slices never overlap; CHUNK is a multiple of
 * 16 floats (64 bytes, a cache line), so two workers never write the same line. The per-chunk sums of
 * squares are added in chunk order by every worker, which makes the global norm (and so the clipping
 * factor) independent of the number of workers.
 */
import { CHUNK, type SliceBounds } from './reduce.js';

export { CHUNK };

/** Word indices in `control`. */
export const Ctl = {
  /** Bumped by the coordinator to hand out a command; workers wait on it between steps. */
  GO: 0,
  /** The command (Cmd) that goes with the latest GO. */
  CMD: 1,
  /** Workers that finished the current command; the last one notifies, the coordinator waits on it. */
  DONE: 2,
  /** Non-zero: give up now. Set by the coordinator on a fault or by a worker that failed; wakes every waiter. */
  ABORT: 3,
  /** The rank whose failure set ABORT (-1 when none): it names the primary fault. */
  FAULT_RANK: 4,
  /** Barrier: arrivals at the current barrier. */
  BARRIER_COUNT: 5,
  /** Barrier: its generation, bumped by the last arrival (the sense that waiters watch). */
  BARRIER_GEN: 6,
  /** The step being run (1-based). */
  STEP: 7,
  /** The epoch and window index the step reads. */
  EPOCH: 8,
  WINDOW: 9,
  /** Flags for the step (StepFlag). */
  FLAGS: 10,
  /** Set by workers when a loss or the gradient norm is not finite on this step. */
  NONFINITE: 11,
  /** The optimizer's step number for this step (1-based; skipped steps do not count). */
  OPT_STEP: 12,
  /** First per-worker word; see arrivedAt / phaseOf / stepOf. */
  PER_WORKER: 16,
} as const;
const CONTROL_WORDS = Ctl.PER_WORKER;

/** The per-worker control words: the barrier generation rank r last arrived at, its phase, its step. */
export const arrivedAt = (r: number): number => Ctl.PER_WORKER + 3 * r;
export const phaseOf = (r: number): number => Ctl.PER_WORKER + 3 * r + 1;
export const stepOf = (r: number): number => Ctl.PER_WORKER + 3 * r + 2;

/** Commands handed out with GO. */
export const Cmd = { STEP: 1, PAUSE: 2 } as const;

/** Step flags. */
export const StepFlag = {
  /** Start the epoch: hidden states back to zero. */
  RESET_STATE: 1,
  /** Clip the reduced gradient to the global norm in scalars[Sc.CLIP]. */
  CLIP: 2,
} as const;

/** What a worker is doing (control word phaseOf(r)), for fault reports. */
export const Phase = {
  IDLE: 0,
  COMPUTE: 1,
  BARRIER_GRADS: 2,
  REDUCE: 3,
  BARRIER_NORM: 4,
  UPDATE: 5,
  DONE: 6,
} as const;
export type PhaseName = 'idle' | 'computing' | "at barrier 'gradients ready'" | 'reducing' | "at barrier 'norm ready'" | 'updating' | 'done';
export const PHASE_NAMES: readonly PhaseName[] = [
  'idle', 'computing', "at barrier 'gradients ready'", 'reducing', "at barrier 'norm ready'", 'updating', 'done',
];

/** Indices in `scalars` (Float64). */
export const Sc = {
  /** Learning rate for this step. */
  LR: 0,
  /** Max global norm when StepFlag.CLIP is set. */
  CLIP: 1,
  /** The global gradient norm (before clipping), written by worker 0. */
  NORM: 2,
  /** First per-worker block of METRICS values; see metric(). */
  PER_WORKER: 8,
} as const;
const SCALARS = Sc.PER_WORKER;

/** Per-worker Float64 values at metric(r, Metric.X). */
export const Metric = {
  /** Σ of the micro-batches' mean losses (the coordinator divides by workers × accumulation). */
  LOSS_SUM: 0,
  /** Tokens the worker trained on this step. */
  TOKENS: 1,
  MS_COMPUTE: 2,
  MS_WAIT: 3,
  MS_REDUCE: 4,
  MS_UPDATE: 5,
  /** Chunks of its slice that were non-zero in some worker, so reduced (all of them without skipZeroGradients). */
  CHUNKS_REDUCED: 6,
} as const;
const METRICS = 7;
export const metric = (r: number, m: number): number => Sc.PER_WORKER + METRICS * r + m;

/** Sizes of the shared buffers; the same on every thread. */
export interface SharedSizes {
  /** L: floats in the flat parameter layout. */
  length: number;
  /** N: workers. */
  workers: number;
  /** k: optimizer state buffers. */
  stateBuffers: number;
}

/** The buffers themselves: what the coordinator allocates and passes to every worker at init. */
export interface SharedBuffers {
  sizes: SharedSizes;
  values: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  state: SharedArrayBuffer[];
  nonzero: SharedArrayBuffer;
  control: SharedArrayBuffer;
  scalars: SharedArrayBuffer;
}

export function numChunks(length: number): number {
  return Math.ceil(length / CHUNK);
}

export function allocateShared(sizes: SharedSizes): SharedBuffers {
  const { length: L, workers: N, stateBuffers: k } = sizes;
  if (!(Number.isInteger(L) && L > 0)) throw new RangeError(`allocateShared: sizes.length must be a positive integer, got ${L}`);
  if (!(Number.isInteger(N) && N > 0)) throw new RangeError(`allocateShared: sizes.workers must be a positive integer, got ${N}`);
  const f32 = Float32Array.BYTES_PER_ELEMENT;
  const buffers: SharedBuffers = {
    sizes: { ...sizes },
    values: new SharedArrayBuffer(L * f32),
    grads: new SharedArrayBuffer(N * L * f32),
    state: Array.from({ length: k }, () => new SharedArrayBuffer(L * f32)),
    nonzero: new SharedArrayBuffer(N * numChunks(L)),
    control: new SharedArrayBuffer((CONTROL_WORDS + 3 * N) * Int32Array.BYTES_PER_ELEMENT),
    scalars: new SharedArrayBuffer((SCALARS + METRICS * N + numChunks(L)) * Float64Array.BYTES_PER_ELEMENT),
  };
  new Int32Array(buffers.control)[Ctl.FAULT_RANK] = -1;
  return buffers;
}

/** Typed views of the shared buffers, as one thread uses them. */
export class SharedViews {
  readonly sizes: SharedSizes;
  readonly values: Float32Array;
  /** grads[r] is worker r's gradient; grads[0] holds the reduced gradient after the reduce-scatter. */
  readonly grads: Float32Array[];
  readonly state: Float32Array[];
  /** nonzero[r][c]: chunk c of grads[r] is not all zero this step. */
  readonly nonzero: Uint8Array[];
  readonly control: Int32Array;
  readonly scalars: Float64Array;
  /** The per-chunk sums of squares, at the end of `scalars`. */
  readonly chunkSums: Float64Array;

  constructor(readonly buffers: SharedBuffers) {
    const { length: L, workers: N } = buffers.sizes;
    this.sizes = buffers.sizes;
    this.values = new Float32Array(buffers.values);
    this.grads = Array.from({ length: N }, (_, r) => new Float32Array(buffers.grads, r * L * 4, L));
    this.state = buffers.state.map((b) => new Float32Array(b));
    this.nonzero = Array.from({ length: N }, (_, r) => new Uint8Array(buffers.nonzero, r * numChunks(L), numChunks(L)));
    this.control = new Int32Array(buffers.control);
    this.scalars = new Float64Array(buffers.scalars);
    this.chunkSums = new Float64Array(buffers.scalars, (SCALARS + METRICS * N) * 8, numChunks(L));
  }
}

/**
 * Worker r's slice: chunks [⌊r·C/N⌋, ⌊(r+1)·C/N⌋), as floats clamped to L. With more workers than
 * chunks some slices are empty, which is harmless.
 */
export function sliceOf(rank: number, workers: number, length: number): SliceBounds {
  const C = numChunks(length);
  const c0 = Math.floor((rank * C) / workers);
  const c1 = Math.floor(((rank + 1) * C) / workers);
  return { lo: Math.min(c0 * CHUNK, length), hi: Math.min(c1 * CHUNK, length), chunkLo: c0, chunkHi: c1 };
}
