/*
 * A worker: a piscina task that lives as long as the training run. It exposes WorkerControl (protocol.ts)
 * with comlink on the MessagePort it is handed, builds a replica of the model whose parameters are views
 * of the shared values, and runs the steps the coordinator hands out through shared memory.
 */
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { portEndpoint } from './endpoint.js';
import { Packr } from 'msgpackr';
import {
  FlatOptimizer, StoragePool, clipScale, defaultGenerator, flattenParameters, mirrorParameters, noGrad, setBackend, tensor, withoutGradSinks,
  type Generator, type MirroredParameters, type OptimizerKind, type Tensor,
} from '@loom/core';
import { LaneBatcher, TokenFile, type TokenSource } from '@loom/data';
import { AbortedError, Barrier, abortAll } from './barrier.js';
import {
  buildModel, copyState, detachState, importBackendModule, modelGenerators, plainToState, stateToPlain, type SequenceModel,
} from './model.js';
import type { EvalShare, WorkerControl, WorkerInit, WorkerReady, WorkerSnapshot, WorkerTokenSource } from './protocol.js';
import { activeRanges, activeShare, globalNorm, markNonzeroChunks, reduceSlice, unionNonzero, zeroChunks, type SliceBounds } from './reduce.js';
import {
  Cmd, Ctl, Metric, Phase, Sc, SharedViews, StepFlag, metric, phaseOf, sliceOf, stepOf,
} from './shared-memory.js';

/** Typed arrays keep their types (and bits) through msgpackr. */
const packr = new Packr({ moreTypes: true, useRecords: false });

/** The piscina task: serves one worker's control surface until stop(). */
export default async function serve(task: { port: MessagePort }): Promise<'stopped'> {
  let stopped!: () => void;
  const finished = new Promise<void>((resolve) => (stopped = resolve));
  const worker = new TrainingWorker(() => stopped());
  Comlink.expose(worker satisfies WorkerControl, portEndpoint(task.port));
  await finished;
  // Let comlink post stop()'s reply before the port closes.
  await new Promise((resolve) => setImmediate(resolve));
  task.port.close();
  return 'stopped';
}

function openSource(src: WorkerTokenSource): TokenSource | Int32Array {
  return src.kind === 'file' ? TokenFile.open(src.path) : src.ids;
}

class TrainingWorker implements WorkerControl {
  private init_!: WorkerInit;
  private views!: SharedViews;
  private model!: SequenceModel;
  /** For a backend without host storage: the parameters' copies to and from the shared buffers (else null). */
  private mirror: MirroredParameters | null = null;
  private barrier!: Barrier;
  private optimizer!: FlatOptimizer<OptimizerKind>;
  private slice!: SliceBounds;
  /** One batcher per micro-batch: shard rank·A + a of N·A. */
  private batchers: LaneBatcher[] = [];
  /** The carried hidden state of each micro-batch (null: zero state). */
  private states: unknown[] = [];
  private generators: [string, Generator][] = [];
  private lanes = 0;
  /** The GO value this worker has answered. */
  private seenGo = 0;
  /** Each step's host arrays, handed out again the next step (null: recycleStorage off). */
  private pool: StoragePool | null = null;
  /** grads[rank] as int32 words, for markNonzeroChunks. */
  private gradBits!: Int32Array;
  /** Chunks non-zero in some worker this step (skipZeroGradients; the union of every worker's marks). */
  private active!: Uint8Array;
  /**
   * The chunks of grads[rank] that the last step left non-zero, to zero before the next backward: its own
   * marks, and for rank 0 (whose buffer receives every slice's reduced sum) the union. null: all of them,
   * as after init or a step that did not finish.
   */
  private leftNonzero: Uint8Array | null = null;

  constructor(private readonly onStop: () => void) {}

  async init(init: WorkerInit): Promise<WorkerReady> {
    this.init_ = init;
    const { rank, workers: N, accumulation: A, globalBatch: B } = init;
    if (init.backendModule) await (await importBackendModule(init.backendModule)).prepare(init.backend);
    const be = setBackend(init.backend);
    defaultGenerator.seed(init.seed);
    this.model = await buildModel(init.model.url, init.model.export, init.model.config);
    this.model.train();
    this.views = new SharedViews(init.buffers);
    // A device backend's parameters cannot be views of the shared values: they are mirrored (uploaded at
    // the start of every step, their gradients downloaded into grads[rank] after backward).
    const flatOpts = { values: this.views.values, grads: this.views.grads[rank], init: 'adopt' as const };
    const flat = be.hostStorage === false ? (this.mirror = mirrorParameters(this.model, flatOpts)) : flattenParameters(this.model, flatOpts);
    const mine = flat.layout.entries.map((e) => `${e.name}@${e.offset}+${e.size}`).join(',');
    const theirs = init.layout.map((e) => `${e.name}@${e.offset}+${e.size}`).join(',');
    if (mine !== theirs || flat.layout.length !== init.buffers.sizes.length) {
      throw new Error(`worker ${rank}: the model built here has a different parameter layout from the coordinator's (is its construction deterministic?)`);
    }
    // Each worker its own stream (nanoGPT: seed + rank), for dropout masks and anything else drawn.
    defaultGenerator.seed(init.seed + 1 + rank);
    this.generators = [['default', defaultGenerator], ...modelGenerators(this.model).map(([k, g]): [string, Generator] => [`model.${k}`, g])];
    modelGenerators(this.model).forEach(([, g], i) => g.seed(init.seed * 1000 + 7 * rank + i + 1));

    this.barrier = new Barrier(this.views.control, N, rank);
    this.slice = sliceOf(rank, N, flat.layout.length);
    // The optimizer reads the reduced gradient (grads[0]) and updates this worker's slice (or, skipping zero
    // gradients under a rule where a zero gradient changes nothing, its share of the non-zero chunks).
    this.optimizer = new FlatOptimizer({ layout: flat.layout, values: this.views.values, grads: this.views.grads[0] }, init.optimizer.kind, init.optimizer.options as never, { state: this.views.state });

    const tokens = openSource(init.train);
    this.batchers = Array.from({ length: A }, (_, a) => new LaneBatcher({
      tokens, batchSize: B, bptt: init.bptt, shard: { index: rank * A + a, count: N * A },
      ...(init.variableLength ? { variableLength: init.variableLength } : {}),
    }));
    this.lanes = this.batchers[0].lanes;
    this.states = Array(A).fill(null);
    this.seenGo = Atomics.load(this.views.control, Ctl.GO);
    this.pool = init.recycleStorage ? new StoragePool() : null;
    const grad = this.views.grads[rank];
    this.gradBits = new Int32Array(grad.buffer, grad.byteOffset, grad.length);
    this.active = new Uint8Array(this.views.nonzero[0].length);
    this.leftNonzero = null;
    return { rank, lanes: this.lanes, microBatches: A, windows: this.batchers[0].numWindows(0) };
  }

  async run(): Promise<'paused'> {
    const c = this.views.control;
    const { rank, workers: N } = this.init_;
    try {
      for (;;) {
        Atomics.store(c, phaseOf(rank), Phase.IDLE);
        // Between steps: wait (as long as it takes) for the next GO, or for ABORT.
        while (Atomics.load(c, Ctl.GO) === this.seenGo) {
          if (Atomics.load(c, Ctl.ABORT) !== 0) throw new AbortedError(`worker ${rank}: aborted while idle`);
          Atomics.wait(c, Ctl.GO, this.seenGo);
        }
        if (Atomics.load(c, Ctl.ABORT) !== 0) throw new AbortedError(`worker ${rank}: aborted`);
        this.seenGo = Atomics.load(c, Ctl.GO);
        const cmd = Atomics.load(c, Ctl.CMD);
        if (cmd === Cmd.STEP) this.step();
        Atomics.store(c, phaseOf(rank), Phase.DONE);
        if (Atomics.add(c, Ctl.DONE, 1) === N - 1) Atomics.notify(c, Ctl.DONE);
        if (cmd === Cmd.PAUSE) return 'paused';
      }
    } catch (e) {
      if (!(e instanceof AbortedError)) {
        // This worker failed first (or so it thinks): name it, then wake everyone.
        Atomics.compareExchange(c, Ctl.FAULT_RANK, -1, rank);
        abortAll(c);
      }
      throw e;
    }
  }

  private step(): void {
    const { rank, workers: N, accumulation: A, barrierTimeoutMs } = this.init_;
    const v = this.views;
    const c = v.control;
    const step = Atomics.load(c, Ctl.STEP);
    const epoch = Atomics.load(c, Ctl.EPOCH);
    const window = Atomics.load(c, Ctl.WINDOW);
    const flags = Atomics.load(c, Ctl.FLAGS);
    Atomics.store(c, stepOf(rank), step);
    Atomics.store(c, phaseOf(rank), Phase.COMPUTE);
    let poison = false;
    const fi = this.init_.faultInjection;
    if (fi && fi.rank === rank && fi.step === step) {
      if (fi.kind === 'throw') throw new Error(`injected fault: worker ${rank} throws at step ${step}`);
      if (fi.kind === 'exit') process.exit(7);
      if (fi.kind === 'hang') for (;;);
      poison = true;
    }

    // Compute: every micro-batch's gradient accumulates into grads[rank] (backward adds in place).
    const t0 = performance.now();
    if (flags & StepFlag.RESET_STATE) this.states.fill(null);
    const before = this.states.slice();
    const L = v.sizes.length;
    const skip = this.init_.skipZeroGradients;
    const leftNonzero = this.leftNonzero;
    this.leftNonzero = null; // until this step finishes
    zeroChunks(v.grads[rank], leftNonzero, L);
    this.mirror?.upload(); // the values every worker's update of the last step wrote
    let lossSum = 0;
    let tokens = 0;
    const compute = (): void => {
      for (let a = 0; a < A; a++) {
        const w = this.batchers[a].window(window, epoch);
        const ids = tensor(w.inputs, [w.T, w.B], { dtype: 'int32' }); // [T, b]
        const targets = tensor(w.targets, [w.T, w.B], { dtype: 'int32' }); // [T, b]
        const state = this.states[a] ?? this.model.zeroState(w.B);
        let { loss, state: next } = this.model.loss(ids, targets, state);
        if (poison) loss = loss.mul(NaN);
        // Later micro-batches add whole gradients, as the reduce adds workers' (bit for bit the same sum).
        if (a === 0) loss.backward();
        else withoutGradSinks(() => loss.backward());
        lossSum += loss.item();
        tokens += w.T * w.B;
        // The pool reuses this step's arrays next step: the carried state gets storage of its own.
        this.states[a] = this.pool ? copyState(next) : detachState(next);
      }
    };
    if (this.pool) this.pool.run(compute);
    else compute();
    this.mirror?.download(); // into grads[rank], for the same reduce as the host backends
    if (!Number.isFinite(lossSum)) Atomics.store(c, Ctl.NONFINITE, 1);
    if (skip) markNonzeroChunks(this.gradBits, L, v.nonzero[rank]);
    const t1 = performance.now();

    // Reduce-scatter: slice `rank` of all gradients (or its share of the non-zero chunks), summed in rank order
    // into grads[0], averaged.
    Atomics.store(c, phaseOf(rank), Phase.BARRIER_GRADS);
    let wait = this.barrier.arrive('gradients ready', barrierTimeoutMs);
    Atomics.store(c, phaseOf(rank), Phase.REDUCE);
    const t2 = performance.now();
    const S = N * A;
    // With skipping, each worker reduces an even share of the chunks that are non-zero somewhere (activeShare),
    // and updates that share where the rule lets it skip; without, its static slice.
    const share = skip ? activeShare(this.active, unionNonzero(v.nonzero, 0, this.active.length, this.active), rank, N, L) : null;
    const reduced = share ? share.activeChunks : this.slice.chunkHi - this.slice.chunkLo;
    reduceSlice(v.grads, share ?? this.slice, S === 1 ? 1 : 1 / S, v.chunkSums, L, skip ? this.active : null);
    const t3 = performance.now();
    Atomics.store(c, phaseOf(rank), Phase.BARRIER_NORM);
    wait += this.barrier.arrive('norm ready', barrierTimeoutMs);

    // Update: every worker computes the same global norm from the chunk sums, clips and updates its slice (or share).
    Atomics.store(c, phaseOf(rank), Phase.UPDATE);
    const t4 = performance.now();
    const norm = globalNorm(v.chunkSums);
    const finite = Number.isFinite(norm) && Atomics.load(c, Ctl.NONFINITE) === 0;
    if (finite) {
      const { lo, hi } = this.slice;
      this.optimizer.lr = v.scalars[Sc.LR];
      this.optimizer.stepCount = Atomics.load(c, Ctl.OPT_STEP) - 1;
      // Clipping rides in the update (one pass over the slice instead of two).
      const gradScale = flags & StepFlag.CLIP ? clipScale(norm, v.scalars[Sc.CLIP]) : 1;
      // Where a zero gradient changes nothing, only the chunks that are non-zero somewhere (bit for bit the same;
      // lr is finite by the optimizer's setter and gradScale in (0, 1], as zeroGradientIsNoop asks).
      if (share && this.optimizer.rule.zeroGradientIsNoop) {
        this.optimizer.updateRanges(activeRanges(this.active, share, L), gradScale);
      } else {
        this.optimizer.updateRange(lo, hi, gradScale);
      }
    } else {
      // A skipped step: the window's state is dropped too, so no NaN is carried into the next one.
      this.states = before;
    }
    const t5 = performance.now();
    if (rank === 0) v.scalars[Sc.NORM] = norm;
    v.scalars[metric(rank, Metric.LOSS_SUM)] = lossSum;
    v.scalars[metric(rank, Metric.TOKENS)] = tokens;
    v.scalars[metric(rank, Metric.MS_COMPUTE)] = t1 - t0;
    v.scalars[metric(rank, Metric.MS_WAIT)] = wait;
    v.scalars[metric(rank, Metric.MS_REDUCE)] = t3 - t2;
    v.scalars[metric(rank, Metric.MS_UPDATE)] = t5 - t4;
    v.scalars[metric(rank, Metric.CHUNKS_REDUCED)] = reduced;
    // What this step left non-zero in grads[rank]: its own marks, and for rank 0 every reduced chunk.
    if (skip) this.leftNonzero = rank === 0 ? this.active : v.nonzero[rank];
  }

  async evaluate(request: { source: WorkerTokenSource; batch: number; bptt: number }): Promise<EvalShare> {
    const { rank, workers: N } = this.init_;
    const batcher = new LaneBatcher({ tokens: openSource(request.source), batchSize: request.batch, bptt: request.bptt, shard: { index: rank, count: N } });
    let lossSum = 0;
    let tokens = 0;
    this.mirror?.upload();
    this.model.eval();
    try {
      noGrad(() => {
        let state: unknown = this.model.zeroState(batcher.lanes);
        for (const w of batcher.windows(0)) {
          const ids = tensor(w.inputs, [w.T, w.B], { dtype: 'int32' }); // [T, b]
          const targets = tensor(w.targets, [w.T, w.B], { dtype: 'int32' }); // [T, b]
          const out = this.model.loss(ids, targets, state);
          lossSum += (out.loss as Tensor).item() * w.T * w.B;
          tokens += w.T * w.B;
          state = out.state;
        }
      });
    } finally {
      this.model.train();
      if (batcher.source instanceof TokenFile) batcher.source.close();
    }
    return { rank, lossSum, tokens };
  }

  async snapshot(): Promise<Uint8Array> {
    const snap: WorkerSnapshot = {
      rank: this.init_.rank,
      hidden: this.states.map((s) => (s === null ? null : stateToPlain(s))),
      generators: Object.fromEntries(this.generators.map(([k, g]) => [k, g.getState()])),
    };
    const bytes = Uint8Array.from(packr.pack(snap)); // a copy: pack() returns a view of msgpackr's reused buffer
    return Comlink.transfer(bytes, [bytes.buffer]);
  }

  async restore(bytes: Uint8Array): Promise<void> {
    const snap = packr.unpack(bytes) as WorkerSnapshot;
    const { rank, accumulation: A } = this.init_;
    if (snap.rank !== rank || snap.hidden.length !== A) {
      throw new Error(`worker ${rank}: the snapshot is worker ${snap.rank}'s with ${snap.hidden.length} micro-batch states; this worker has ${A}`);
    }
    this.states = snap.hidden.map((p) => (p === null ? null : plainToState(p)));
    // A generator the snapshot lacks (a checkpoint written with another worker count) keeps its seeded stream.
    for (const [k, g] of this.generators) if (snap.generators[k]) g.setState(snap.generators[k]);
  }

  async stop(): Promise<void> {
    for (const b of this.batchers) if (b.source instanceof TokenFile) b.source.close();
    this.onStop();
  }
}
