import { DataError } from './errors.js';
import { Rng } from './rng.js';
import { ArrayTokenSource, type TokenSource } from './token-file.js';

/**
 * AWD-LSTM's variable-length windows (Merity et al. 2017, `main.py`): each window's base length is
 * `bptt` with probability 1 - pShort, else bptt / 2; its length is max(minLength, trunc(normal(base, std))).
 * Lengths come from a seeded PRNG per (seed, epoch), so every shard computes the same windows.
 */
export interface VariableLengthOptions {
  seed: number;
  /** Probability of a half-length base (default 0.05). */
  pShort?: number;
  /** Standard deviation of the length (default 5). */
  std?: number;
  /** Shortest window (default 5). */
  minLength?: number;
}

export interface LaneBatcherOptions {
  /** The token stream: an in-memory array or a TokenFile (windows are read lazily by offset). */
  tokens: TokenSource | Int32Array;
  /** B, the global number of lanes (the single-process batch size). */
  batchSize: number;
  /** Window length (the TBPTT truncation length). */
  bptt: number;
  /** This worker's part: lanes split into `count` contiguous groups, `index` is this one's. */
  shard?: { index: number; count: number };
  /**
   * If true, a batchSize that shard.count does not divide is allowed: the first batchSize % count
   * shards get one extra lane. Default false: it is refused, because equal shards keep gradient
   * averaging exact without weights.
   */
  unevenShards?: boolean;
  variableLength?: VariableLengthOptions;
}

/** One TBPTT window for this shard, time-major. */
export interface Window {
  /** [T, B] inputs: element t * B + b is lane b's token at time t. */
  inputs: Int32Array;
  /** [T, B] targets: the next token of each input. */
  targets: Int32Array;
  /** Window length. */
  T: number;
  /** Lanes in this shard. */
  B: number;
  /** The global lane index of this shard's first lane. */
  laneStart: number;
  /** The window's start position within each lane. */
  position: number;
  windowIndex: number;
  epoch: number;
}

/**
 * TBPTT lane batching, as PyTorch's word_language_model `batchify` + `get_batch`:
 *
 * - nbatch = floor(n / B) tokens per lane; the trailing n mod B tokens are dropped.
 * - Lane b covers tokens [b * nbatch, (b + 1) * nbatch).
 * - Fixed length: window i starts at position i * bptt with T = min(bptt, nbatch - 1 - i * bptt),
 *   for i * bptt < nbatch - 1 (so the last window may be shorter); targets are inputs shifted by one.
 * - Variable length (AWD-LSTM): windows follow one another from position 0 while position < nbatch - 2,
 *   with T = min(length drawn, nbatch - 1 - position).
 * - Sharding: the B lanes split into shard.count contiguous groups in order; concatenating the shards'
 *   windows along B gives exactly the single-process window. Window lengths do not depend on the shard.
 *
 * Deterministic: window (epoch, i) is always the same, so training resumes at any window index.
 */
export class LaneBatcher {
  readonly source: TokenSource;
  readonly batchSize: number;
  readonly bptt: number;
  /** Tokens per lane. */
  readonly laneLength: number;
  /** This shard's lanes: [laneStart, laneEnd). */
  readonly laneStart: number;
  readonly laneEnd: number;
  readonly variableLength: Required<VariableLengthOptions> | undefined;
  private schedule: { epoch: number; starts: Float64Array; lengths: Int32Array } | undefined;

  constructor(options: LaneBatcherOptions) {
    const { batchSize: B, bptt } = options;
    this.source = options.tokens instanceof Int32Array ? new ArrayTokenSource(options.tokens) : options.tokens;
    if (!(Number.isInteger(B) && B > 0)) throw new DataError(`LaneBatcher: options.batchSize must be a positive integer, got ${B}`);
    if (!(Number.isInteger(bptt) && bptt > 0)) throw new DataError(`LaneBatcher: options.bptt must be a positive integer, got ${bptt}`);
    const n = this.source.length;
    if (n === 0) throw new DataError('LaneBatcher: empty corpus: options.tokens has no tokens');
    const nbatch = Math.floor(n / B);
    if (nbatch < 2) {
      throw new DataError(`LaneBatcher: ${n} tokens give ${nbatch} per lane for batchSize ${B}: expected at least 2 (one input and its target)`);
    }
    this.batchSize = B;
    this.bptt = bptt;
    this.laneLength = nbatch;
    const shard = options.shard ?? { index: 0, count: 1 };
    const { index, count } = shard;
    if (!(Number.isInteger(count) && count > 0)) throw new DataError(`LaneBatcher: options.shard.count must be a positive integer, got ${count}`);
    if (!(Number.isInteger(index) && index >= 0 && index < count)) throw new DataError(`LaneBatcher: options.shard.index must be an integer in [0, ${count}), got ${index}`);
    if (count > B) throw new DataError(`LaneBatcher: ${count} workers but batchSize ${B}: every worker needs at least one lane`);
    if (B % count !== 0 && !options.unevenShards) {
      throw new DataError(`LaneBatcher: batchSize ${B} is not divisible by ${count} workers: expected a multiple of ${count} (or set unevenShards)`);
    }
    const base = Math.floor(B / count);
    const extra = B % count;
    this.laneStart = index * base + Math.min(index, extra);
    this.laneEnd = this.laneStart + base + (index < extra ? 1 : 0);
    if (options.variableLength) {
      const v = options.variableLength;
      const resolved = { seed: v.seed, pShort: v.pShort ?? 0.05, std: v.std ?? 5, minLength: v.minLength ?? 5 };
      if (!Number.isFinite(resolved.seed)) throw new DataError(`LaneBatcher: options.variableLength.seed must be a number, got ${v.seed}`);
      if (!(resolved.pShort >= 0 && resolved.pShort <= 1)) throw new DataError(`LaneBatcher: options.variableLength.pShort must be in [0, 1], got ${resolved.pShort}`);
      if (!(resolved.std >= 0)) throw new DataError(`LaneBatcher: options.variableLength.std must be >= 0, got ${resolved.std}`);
      if (!(Number.isInteger(resolved.minLength) && resolved.minLength > 0)) throw new DataError(`LaneBatcher: options.variableLength.minLength must be a positive integer, got ${resolved.minLength}`);
      this.variableLength = resolved;
    }
  }

  /** Lanes in this shard. */
  get lanes(): number {
    return this.laneEnd - this.laneStart;
  }

  /** Number of windows in an epoch (the same for every epoch with fixed lengths). */
  numWindows(epoch = 0): number {
    if (!this.variableLength) return Math.ceil((this.laneLength - 1) / this.bptt);
    return this.scheduleFor(epoch).starts.length;
  }

  /** Where window `index` of `epoch` starts in each lane, and its length. */
  span(index: number, epoch = 0): { position: number; T: number } {
    const count = this.numWindows(epoch);
    if (!(Number.isInteger(index) && index >= 0 && index < count)) {
      throw new DataError(`LaneBatcher: window index ${index} out of range [0, ${count}) for epoch ${epoch}`);
    }
    if (!this.variableLength) {
      const position = index * this.bptt;
      return { position, T: Math.min(this.bptt, this.laneLength - 1 - position) };
    }
    const s = this.scheduleFor(epoch);
    return { position: s.starts[index], T: s.lengths[index] };
  }

  /** Window `index` of `epoch`, read from the source (fresh arrays, safe to transfer to a worker). */
  window(index: number, epoch = 0): Window {
    const { position, T } = this.span(index, epoch);
    const B = this.lanes;
    const inputs = new Int32Array(T * B); // [T, B]
    const targets = new Int32Array(T * B); // [T, B]
    const lane = new Int32Array(T + 1);
    for (let j = 0; j < B; j++) {
      this.source.read((this.laneStart + j) * this.laneLength + position, T + 1, lane);
      for (let t = 0; t < T; t++) {
        inputs[t * B + j] = lane[t];
        targets[t * B + j] = lane[t + 1];
      }
    }
    return { inputs, targets, T, B, laneStart: this.laneStart, position, windowIndex: index, epoch };
  }

  /** The windows of one epoch, starting at window `from` (to resume after a checkpoint). */
  *windows(epoch = 0, from = 0): Generator<Window> {
    const count = this.numWindows(epoch);
    if (!(Number.isInteger(from) && from >= 0 && from <= count)) {
      throw new DataError(`LaneBatcher.windows: from ${from} out of range [0, ${count}] for epoch ${epoch}`);
    }
    for (let i = from; i < count; i++) yield this.window(i, epoch);
  }

  private scheduleFor(epoch: number): { epoch: number; starts: Float64Array; lengths: Int32Array } {
    if (!(Number.isInteger(epoch) && epoch >= 0)) throw new DataError(`LaneBatcher: epoch must be a non-negative integer, got ${epoch}`);
    if (this.schedule?.epoch === epoch) return this.schedule;
    const v = this.variableLength!;
    const rng = new Rng(v.seed, epoch);
    const starts: number[] = [];
    const lengths: number[] = [];
    const n = this.laneLength;
    // AWD-LSTM: `while i < train_data.size(0) - 1 - 1`, `seq_len = max(5, int(np.random.normal(bptt, 5)))`.
    for (let i = 0; i < n - 1 - 1; ) {
      const base = rng.uniform() < 1 - v.pShort ? this.bptt : this.bptt / 2;
      const len = Math.max(v.minLength, Math.trunc(rng.normal(base, v.std)));
      const T = Math.min(len, n - 1 - i);
      starts.push(i);
      lengths.push(T);
      i += T;
    }
    this.schedule = { epoch, starts: Float64Array.from(starts), lengths: Int32Array.from(lengths) };
    return this.schedule;
  }
}
