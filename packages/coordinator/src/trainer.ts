/*
 * The trainer: data-parallel truncated-BPTT training on worker threads.
 *
 *   const trainer = new Trainer({ model, data, optimizer, workers: 2, globalBatch: 20, bptt: 35 });
 *   for await (const e of trainer) if (e.type === 'step') console.log(e.step, e.loss);
 *   const test = await trainer.evaluate('test.tok');   // the trained parameters, on the workers
 *   await trainer.close();                             // ends the workers evaluate() started
 *   // or: const result = await train(config, { onEvent })
 *
 * The coordinator (this thread, "rank 0" in the usual vocabulary) owns logging, evaluation totals and
 * checkpoints; the workers own the compute. It builds the model once to lay out the shared parameters
 * (every worker adopts those values, so all replicas start identical), hands out steps through shared
 * memory (protocol.ts), and restarts the workers from the last checkpoint when one of them fails.
 *
 * Worker threads: run() starts N workers and ends them before it returns, so a caller that only trains
 * never holds threads afterwards. evaluate() starts its own N workers on the same shared parameters the
 * first time it is called and keeps them for later calls; close() ends them.
 */
import * as fs from 'node:fs';
import {
  FlatOptimizer, type LRSchedule,
  backendInfo, checkpointPath, flatLayout, flattenParameters, getBackend, loadCheckpoint, loadStateDict, manualSeed,
  rotateCheckpoints, saveCheckpoint, setBackend, stateDict,
  type Checkpoint, type CheckpointInput, type GeneratorState, type OptimizerKind, type OptimizerState, type ScheduleState,
} from '@loom/core';
import { LaneBatcher, TokenFile, type TokenSource } from '@loom/data';
import { Packr } from 'msgpackr';
import { onInterrupt } from './interrupt.js';
import {
  ConfigError, describeConfig, isTokenSource, resolveConfig, type ResolvedConfig, type TokenSourceSpec, type TrainerConfig,
} from './config.js';
import { makeSchedule } from './schedule.js';
import { buildModel, importBackendModule, resolveModelUrl, type PlainState, type SequenceModel } from './model.js';
import { WorkerFault, WorkerPool } from './pool.js';
import type {
  FaultReport, StepEvent, TrainerEvent, WorkerInit, WorkerSnapshot, WorkerTiming, WorkerTokenSource,
} from './protocol.js';
import {
  Cmd, Ctl, Metric, Sc, SharedViews, StepFlag, allocateShared, metric, type SharedBuffers,
} from './shared-memory.js';

export { WorkerFault };

export interface TrainerOptions {
  /** Called with every event, in order; awaited, so a slow callback slows training. */
  onEvent?: (event: TrainerEvent) => void | Promise<void>;
  /** Where the coordinator's lines go (config, batch arithmetic, epochs, faults). Default console.log; false: nowhere. */
  log?: ((line: string) => void) | false;
  /** Also log every n-th step (0: never). Default 0. */
  logEvery?: number;
  /** End cleanly on SIGINT: finish the step, save a checkpoint, stop. Default true. */
  handleSigint?: boolean;
}

export interface TrainResult {
  /** Steps run, counting from the start of training (a resumed run continues the count). */
  step: number;
  /** Optimizer updates made (skipped steps do not count). */
  optimizerSteps: number;
  epoch: number;
  /** Why training ended before its epochs or maxSteps, if it did. */
  stopped: 'SIGINT' | 'stop()' | null;
  /** Faults survived (restarts happened for each). */
  faults: FaultReport[];
  /** The last step's loss (NaN if no step ran). */
  lastLoss: number;
  /**
   * Training tokens of the steps that updated the parameters, and wall-clock seconds of training, both
   * counted from step 0: a resumed run continues its checkpoint's counts.
   */
  tokens: number;
  seconds: number;
}

/** What evaluate() answers. */
export interface EvalResult {
  /** Mean cross-entropy per predicted token, in nats. */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Tokens predicted, over all workers. */
  tokens: number;
}

export interface EvaluateOptions {
  /** Lanes, split over the workers (so a multiple of workers). Default: eval.batch, else globalBatch. */
  batch?: number;
  /** Window length (the state is carried across windows, so it changes only the arithmetic's grouping). Default: eval.bptt, else bptt. */
  bptt?: number;
}

/** Where training is: what the next step reads, how many steps and updates came before. */
interface Progress {
  step: number;
  optimizerSteps: number;
  /** The next window to train on: window `window` of epoch `epoch` (epoch === epochs: finished). */
  epoch: number;
  window: number;
  /** Training loss of the current epoch so far (for the epoch event and plateau schedules). */
  epochLossSum: number;
  epochSteps: number;
  /** Training tokens of the steps that updated the parameters. */
  tokens: number;
}

/** What the coordinator keeps of a checkpoint in extra. */
interface TrainerExtra {
  progress: Progress;
  schedule: ScheduleState | null;
  /** Per worker, per micro-batch: the carried hidden state (null: zero); null as a whole: fresh workers. */
  hidden: (PlainState | null)[][] | null;
  workers: number;
  accumulation: number;
  /** Seconds of training up to the checkpoint, counting the runs it resumed. */
  seconds: number;
}

/** TrainerExtra as checkpoints written before the token and time counts were kept have it. */
type StoredTrainerExtra = Omit<TrainerExtra, 'seconds' | 'progress'> & { seconds?: number; progress: Omit<Progress, 'tokens'> & { tokens?: number } };

const packr = new Packr({ moreTypes: true, useRecords: false });

export class Trainer implements AsyncIterable<TrainerEvent> {
  readonly config: ResolvedConfig;
  private readonly options: TrainerOptions;
  private stopReason: 'SIGINT' | 'stop()' | null = null;
  private listeners: ((e: TrainerEvent) => void)[] = [];
  private started = false;
  /** run() is in progress (evaluate() waits for it to return). */
  private training = false;
  /** The run() in progress or done, for close(). */
  private running: Promise<unknown> | null = null;
  /** What ended run(), if it failed: the shared parameters may then be half-updated. */
  private failure: Error | null = null;
  private closed = false;
  /** The workers evaluate() started and keeps for its next call (null: none). */
  private evalPool: Promise<WorkerPool> | null = null;
  /** evaluate() calls, one after the other: they share the workers. Never rejects. */
  private evalQueue: Promise<unknown> = Promise.resolve();
  /**
   * The highest step of the step (and skip), eval and epoch events emitted so far. A restart after a fault
   * replays the steps since the last checkpoint; events at or below these were reported before the fault
   * and are not emitted again, so every consumer sees each step once.
   */
  private reported = { step: 0, eval: 0, epoch: 0 };
  /** The last checkpoint file written (or resumed from). */
  private lastCheckpoint: string | null = null;
  /** Seconds of training before this run (the resumed checkpoint's), and when this run's training began. */
  private priorSeconds = 0;
  private startedAt: number | null = null;

  // Set up once by setup(), for run() or evaluate():
  private ready: Promise<CheckpointInput> | null = null;
  private model!: SequenceModel;
  private modelUrl!: string;
  private backendUrl: string | null = null;
  private buffers!: SharedBuffers;
  private views!: SharedViews;
  private optimizer!: FlatOptimizer<OptimizerKind>;
  private schedule: LRSchedule | null = null;
  private batcher!: LaneBatcher;
  private trainSource!: WorkerTokenSource;
  private validSource: WorkerTokenSource | null = null;
  private progress!: Progress;
  private lastLoss = NaN;

  /** Validates the config (ConfigError names the key); nothing starts until run() or iteration. */
  constructor(config: TrainerConfig, options: TrainerOptions = {}) {
    this.config = resolveConfig(config);
    this.options = options;
  }

  /** Asks training to end after the current step, with a checkpoint (as SIGINT does). */
  stop(): void {
    this.stopReason ??= 'stop()';
  }

  /**
   * The coordinator's replica of the model (built by run()). Its parameters are views of the shared values,
   * so after run() it is the trained model (for evaluation, sampling, saving).
   */
  get trainedModel(): SequenceModel {
    if (!this.model) throw new Error('Trainer.trainedModel: the model is built by run() (or evaluate()); use it after one of them started');
    return this.model;
  }

  /** The current parameter values by name (copies); after run(), the trained ones. */
  parameters(): Record<string, Float32Array> {
    if (!this.model) throw new Error('Trainer.parameters: the model is built by run() (or evaluate()); call it after one of them started');
    return Object.fromEntries(this.model.namedParameters().map(([n, p]) => [n, (p.data as Float32Array).slice()]));
  }

  /** Runs training and yields its events; leaving the loop early stops training cleanly. */
  [Symbol.asyncIterator](): AsyncIterator<TrainerEvent> {
    const queue: TrainerEvent[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: unknown = null;
    this.listeners.push((e) => {
      queue.push(e);
      wake?.();
    });
    const running = this.run().then(
      () => void (finished = true),
      (e) => void ((failure = e), (finished = true)),
    ).finally(() => wake?.());
    return {
      next: async (): Promise<IteratorResult<TrainerEvent>> => {
        while (queue.length === 0 && !finished) await new Promise<void>((r) => (wake = r));
        wake = null;
        if (queue.length) return { value: queue.shift()!, done: false };
        if (failure) throw failure;
        return { value: undefined, done: true };
      },
      return: async (): Promise<IteratorResult<TrainerEvent>> => {
        this.stop();
        await running;
        return { value: undefined, done: true };
      },
    };
  }

  /** Trains until the epochs (or maxSteps) are done, stop() or SIGINT. Throws WorkerFault when restarts run out. */
  async run(): Promise<TrainResult> {
    if (this.closed) throw new Error('Trainer.run: the trainer is closed');
    if (this.started) throw new Error('Trainer.run: a trainer runs once; make a new Trainer');
    this.started = true;
    this.training = true;
    const running = this.train();
    this.running = running;
    try {
      return await running;
    } catch (e) {
      this.failure = e as Error;
      throw e;
    } finally {
      this.training = false;
    }
  }

  /**
   * Perplexity of `source` (a token file path or ids, as data.train) under the current parameters,
   * evaluated by the workers exactly as data.valid is during training: `batch` lanes split over the
   * workers, windows of `bptt`, the state carried from window to window starting from zero, the workers'
   * sums added in rank order. So it equals a single-process evaluation of the same parameters.
   *
   * After run(): the trained parameters. Before it: the initial ones (or the `resume` checkpoint's). Not
   * while run() is in progress (config.eval evaluates data.valid then), nor after run() failed. The first
   * call starts N workers; they stay for the next calls until close(). A worker fault throws WorkerFault
   * (no restart) and ends them; the next call starts fresh ones.
   */
  async evaluate(source: TokenSourceSpec, options: EvaluateOptions = {}): Promise<EvalResult> {
    // Checked when called, so a run() started right after cannot slip in between.
    if (this.closed) throw new Error('Trainer.evaluate: the trainer is closed');
    if (this.training) throw new Error('Trainer.evaluate: run() is in progress; evaluate after it returns (during training, config.eval evaluates data.valid)');
    if (this.failure instanceof WorkerFault) {
      throw new Error(`Trainer.evaluate: run() ended with a worker fault (${this.failure.message}), so the parameters may be half-updated; resume from the last checkpoint${this.lastCheckpoint ? ` (${this.lastCheckpoint})` : ''} in a new Trainer to evaluate it`);
    }
    if (this.failure) throw new Error(`Trainer.evaluate: run() failed: ${this.failure.message}`);
    if (!isTokenSource(source)) {
      throw new TypeError(`Trainer.evaluate: source must be a token file path or a non-empty Int32Array of ids, got ${typeof source === 'string' ? `'${source}'` : describeSource(source)}`);
    }
    for (const k of Object.keys(options)) {
      if (k !== 'batch' && k !== 'bptt') throw new TypeError(`Trainer.evaluate: unknown option '${k}' (known: batch, bptt)`);
    }
    const cfg = this.config;
    const batch = options.batch ?? cfg.eval?.batch ?? cfg.globalBatch;
    const bptt = options.bptt ?? cfg.eval?.bptt ?? cfg.bptt;
    for (const [k, v] of [['batch', batch], ['bptt', bptt]] as const) {
      if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`Trainer.evaluate: options.${k} must be an integer >= 1, got ${v}`);
    }
    if (batch % cfg.workers !== 0) {
      throw new RangeError(`Trainer.evaluate: options.batch (${batch}) is not divisible by workers (${cfg.workers}): every worker evaluates the same number of lanes`);
    }
    const turn = this.evalQueue.then(() => this.evaluateNow(source, batch, bptt));
    this.evalQueue = turn.catch(() => undefined);
    return turn;
  }

  /**
   * Releases the trainer's threads: a run() in progress is asked to stop (as stop(): it finishes the step
   * and saves a checkpoint) and awaited, evaluations in flight finish, then the workers evaluate() keeps
   * are ended. Call it when done with evaluate(); calling it again does nothing. Afterwards run() and
   * evaluate() refuse.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.training) this.stop();
    await this.running?.catch(() => undefined);
    await this.evalQueue;
    await this.releaseEvalPool();
  }

  /** run()'s body: attempts until one ends training, restarting the workers after each fault. */
  private async train(): Promise<TrainResult> {
    const cfg = this.config;
    const stopOnSigint = this.options.handleSigint === false ? null : onInterrupt(() => {
      this.stopReason ??= 'SIGINT';
      this.log('trainer: SIGINT: finishing the current step, then saving a checkpoint (SIGINT again to kill)');
    });
    const faults: FaultReport[] = [];
    try {
      // The training workers take the threads of any evaluate() kept (after its calls in flight finish).
      await this.evalQueue;
      await this.releaseEvalPool();
      this.startedAt = performance.now();
      let snapshot = await this.prepare();
      for (let attempt = 0; ; attempt++) {
        try {
          const saved = await this.attempt(attempt, snapshot, (s) => (snapshot = s));
          const p = this.progress;
          return { step: p.step, optimizerSteps: p.optimizerSteps, epoch: p.epoch, stopped: saved, faults, lastLoss: this.lastLoss, tokens: p.tokens, seconds: this.seconds() };
        } catch (e) {
          if (!(e instanceof WorkerFault)) throw e;
          const restarting = e.restartable && attempt < cfg.faults.maxRestarts;
          faults.push(e.report);
          this.log(`trainer: FAULT: ${e.report.message}`);
          this.log(restarting ? this.restartLine(snapshot.step, attempt) : this.givingUpLine(snapshot.step, attempt, e.restartable));
          await this.emit({ type: 'fault', report: e.report, attempt, restarting, resumeFrom: restarting ? snapshot.step : null, checkpoint: this.lastCheckpoint });
          if (!restarting) throw e;
          this.restore(snapshot);
        }
      }
    } finally {
      stopOnSigint?.();
    }
  }

  /** What a restart goes back to, said once in the log: the checkpoint, or the start of the run (and why). */
  private restartLine(from: number, attempt: number): string {
    const cfg = this.config;
    const where = this.lastCheckpoint
      ? `from step ${from}, the checkpoint ${this.lastCheckpoint}`
      : `from step ${from}: ${cfg.checkpoint ? 'no checkpoint was saved yet' : 'no checkpoint is configured'}, so training starts over`;
    const seen = this.reported.step;
    const replay = seen <= from ? ''
      : seen === from + 1 ? `; step ${seen} runs again but was reported before the fault, so it is not reported again`
      : `; steps ${from + 1}–${seen} run again but were reported before the fault, so they are not reported again`;
    return `trainer: restarting the workers ${where} (restart ${attempt + 1} of at most ${cfg.faults.maxRestarts})${replay}`;
  }

  private givingUpLine(from: number, attempt: number, restartable: boolean): string {
    const last = this.lastCheckpoint
      ? `the last checkpoint (${this.lastCheckpoint}) is step ${from}`
      : this.config.checkpoint ? 'no checkpoint was saved' : 'no checkpoint is configured';
    return `trainer: giving up${restartable ? ` after ${attempt} restart${attempt === 1 ? '' : 's'}` : ''}; ${last}`;
  }

  // -------------------------------------------------------------------------------------------
  // Setting up, once per run
  // -------------------------------------------------------------------------------------------

  /** setup(), then the run's opening lines and its start event; returns the state to start from. */
  private async prepare(): Promise<CheckpointInput> {
    const cfg = this.config;
    const start = await this.setup();
    const N = cfg.workers;
    const lanes = cfg.globalBatch / N;
    const micro = lanes / cfg.accumulation;
    this.log(`trainer: config ${JSON.stringify(describeConfig(cfg))}`);
    this.log(`trainer: global batch ${cfg.globalBatch} lanes × bptt ${cfg.bptt} = ${cfg.globalBatch * cfg.bptt} tokens per step; ${N} worker${N === 1 ? '' : 's'} × ${lanes} lanes each` +
      (cfg.accumulation > 1 ? ` (accumulation ${cfg.accumulation}: micro-batches of ${micro} lanes)` : ''));
    this.log(`trainer: ${this.model.numParameters()} parameters; ${this.batcher.numWindows(0)} windows per epoch; ${cfg.epochs} epoch${cfg.epochs === 1 ? '' : 's'}${cfg.maxSteps ? `, at most ${cfg.maxSteps} steps` : ''}`);
    await this.emit({
      type: 'start', workers: N, globalBatch: cfg.globalBatch, lanesPerWorker: lanes, accumulation: cfg.accumulation,
      lanesPerMicroBatch: micro, bptt: cfg.bptt, parameters: this.model.numParameters(), fromStep: this.progress.step + 1,
      priorTokens: this.progress.tokens, priorSeconds: this.priorSeconds,
    });
    return start;
  }

  /** The model and the shared memory, built once for run() and evaluate(); resolves to the state to start from. */
  private setup(): Promise<CheckpointInput> {
    this.ready ??= this.build();
    return this.ready;
  }

  /** Builds the model and the shared memory; returns the state to start from (fresh or resumed). */
  private async build(): Promise<CheckpointInput> {
    const cfg = this.config;
    this.modelUrl = resolveModelUrl(cfg.model);
    let backendModule: { prepare(name: string): Promise<void> } | null = null;
    if (cfg.backendModule) {
      this.backendUrl = resolveModelUrl({ module: cfg.backendModule }, 'backendModule');
      backendModule = await importBackendModule(this.backendUrl);
    }
    // The coordinator's replica lays out and initialises the shared parameters; workers adopt them. Its
    // parameters are views of the shared host buffers, so for a backend without host storage (a device
    // backend, which could claim the device the workers need if created here) it is built on the reference
    // backend: the initial values come from the same seeded generator either way.
    const device = backendInfo(cfg.backend).hostStorage === false;
    if (backendModule && !device) await backendModule.prepare(cfg.backend);
    const previous = getBackend();
    setBackend(device ? 'reference' : cfg.backend);
    try {
      manualSeed(cfg.seed);
      this.model = await buildModel(this.modelUrl, cfg.model.export, cfg.model.config);
    } finally {
      setBackend(previous);
    }
    const { kind, ...options } = cfg.optimizer as { kind: OptimizerKind } & Record<string, unknown>;
    const layout = flatLayout(this.model);
    this.buffers = allocateShared({ length: layout.length, workers: cfg.workers, stateBuffers: 0 });
    // The optimizer allocates (and initialises) its state on shared memory; the workers adopt it.
    const flat = flattenParameters(this.model, { values: new Float32Array(this.buffers.values), grads: new Float32Array(this.buffers.grads, 0, layout.length), init: 'copy' });
    this.optimizer = new FlatOptimizer(flat, kind, options as never, { shared: true });
    this.buffers.state = this.optimizer.stateBuffers.map((b) => b.buffer as SharedArrayBuffer);
    this.buffers.sizes.stateBuffers = this.buffers.state.length;
    this.views = new SharedViews(this.buffers);
    this.schedule = makeSchedule(cfg.schedule, this.optimizer);

    this.trainSource = shareSource(cfg.data.train);
    this.validSource = cfg.data.valid === null ? null : shareSource(cfg.data.valid);
    this.batcher = new LaneBatcher({
      tokens: openSource(this.trainSource), batchSize: cfg.globalBatch, bptt: cfg.bptt,
      ...(cfg.data.variableLength ? { variableLength: cfg.data.variableLength } : {}),
    });
    this.progress = { step: 0, optimizerSteps: 0, epoch: 0, window: 0, epochLossSum: 0, epochSteps: 0, tokens: 0 };
    if (cfg.checkpoint?.dir) fs.mkdirSync(cfg.checkpoint.dir, { recursive: true });

    let start: CheckpointInput;
    if (cfg.resume) {
      const ckpt = await loadCheckpoint(cfg.resume);
      const extra = ckpt.extra?.trainer as StoredTrainerExtra | undefined;
      if (!extra) throw new ConfigError(`trainer config: resume: ${cfg.resume} is not a trainer checkpoint (no extra.trainer)`);
      if (extra.workers * extra.accumulation !== cfg.workers * cfg.accumulation) {
        throw new ConfigError(`trainer config: resume: ${cfg.resume} was written with workers × accumulation = ${extra.workers} × ${extra.accumulation}; this run has ${cfg.workers} × ${cfg.accumulation} (hidden states are kept per micro-batch, so the product must match)`);
      }
      if (extra.workers !== cfg.workers) {
        if (extra.hidden) extra.hidden = regroup(extra.hidden, cfg.workers);
        ckpt.generators = {}; // per-worker streams do not carry over to a different worker count
      }
      start = ckpt;
      this.restore(start);
      this.priorSeconds = extra.seconds ?? 0;
      this.lastCheckpoint = cfg.resume;
      this.log(`trainer: resumed from ${cfg.resume} at step ${extra.progress.step} (epoch ${extra.progress.epoch}, window ${extra.progress.window})`);
      if (extra.seconds === undefined) this.log(`trainer: ${cfg.resume} was written before checkpoints kept the training tokens and seconds: both count from 0 here`);
    } else {
      start = this.snapshot(null);
    }
    return start;
  }

  // -------------------------------------------------------------------------------------------
  // One attempt: start the workers, restore, train until done or a fault
  // -------------------------------------------------------------------------------------------

  private async attempt(attempt: number, start: CheckpointInput, saved: (s: CheckpointInput) => void): Promise<'SIGINT' | 'stop()' | null> {
    const cfg = this.config;
    const stepMs = cfg.faults.stepTimeoutMs;
    const fi = cfg.faultInjection && cfg.faultInjection.attempts.includes(attempt)
      ? { rank: cfg.faultInjection.rank, step: cfg.faultInjection.step, kind: cfg.faultInjection.kind } : null;
    const pool = await this.startWorkers(fi);
    try {
      const hidden = (start.extra?.trainer as TrainerExtra | undefined)?.hidden;
      if (hidden) {
        await pool.all('restore', this.progress.step, stepMs, (api, rank) => api.restore(packr.pack(workerSnapshot(start, rank, hidden[rank]))));
      }

      pool.startRunning();
      let stopped: 'SIGINT' | 'stop()' | null = null;
      for (;;) {
        if (this.progress.epoch >= cfg.epochs || (cfg.maxSteps !== null && this.progress.step >= cfg.maxSteps)) break;
        if (this.stopReason) {
          stopped = this.stopReason;
          break;
        }
        await this.step(pool);
        const p = this.progress;
        const epochEnd = p.window >= this.batcher.numWindows(p.epoch);
        if (epochEnd) await this.endEpoch(pool);
        // endEpoch() has evaluated at this step already.
        const evalDue = cfg.eval && cfg.eval.every > 0 && p.step % cfg.eval.every === 0 && !epochEnd;
        const ckptDue = cfg.checkpoint && cfg.checkpoint.every > 0 && p.step % cfg.checkpoint.every === 0;
        if (evalDue || ckptDue) {
          await pool.pause(p.step, stepMs);
          if (evalDue) await this.validate(pool);
          if (ckptDue) saved(await this.checkpoint(pool));
          pool.startRunning();
        }
      }
      await pool.pause(this.progress.step, stepMs);
      const last = this.progress.step;
      if (cfg.checkpoint && !(cfg.checkpoint.every > 0 && last % cfg.checkpoint.every === 0 && last > 0)) saved(await this.checkpoint(pool));
      if (stopped) {
        this.log(`trainer: stopped (${stopped}) after step ${last}${cfg.checkpoint ? `; checkpoint ${this.lastCheckpoint}` : '; no checkpoint configured'}`);
        await this.emit({ type: 'stopped', step: last, reason: stopped, checkpoint: cfg.checkpoint ? this.lastCheckpoint : null });
      } else {
        await this.emit({ type: 'done', step: last, epoch: this.progress.epoch });
      }
      await pool.close(5000);
      return stopped;
    } finally {
      await pool.destroy();
    }
  }

  /** N fresh workers on the shared buffers, started (init) and idle; if any fails to start, all are ended. */
  private async startWorkers(faultInjection: WorkerInit['faultInjection']): Promise<WorkerPool> {
    const cfg = this.config;
    const N = cfg.workers;
    const c = this.views.control;
    // Fresh control words for fresh workers.
    c.fill(0);
    Atomics.store(c, Ctl.FAULT_RANK, -1);
    const pool = new WorkerPool(N, c);
    try {
      const { kind, ...options } = cfg.optimizer as { kind: OptimizerKind } & Record<string, unknown>;
      const layout = flatLayout(this.model).entries.map(({ name, offset, size }) => ({ name, offset, size }));
      await pool.all('start', this.progress.step, cfg.faults.startTimeoutMs, (api, rank) => api.init({
        rank, workers: N, buffers: this.buffers, model: { url: this.modelUrl, export: cfg.model.export, config: cfg.model.config },
        layout, backend: cfg.backend, backendModule: this.backendUrl, recycleStorage: cfg.recycleStorage, skipZeroGradients: cfg.skipZeroGradients, seed: cfg.seed, train: this.trainSource, globalBatch: cfg.globalBatch, bptt: cfg.bptt,
        accumulation: cfg.accumulation, variableLength: cfg.data.variableLength, optimizer: { kind, options },
        barrierTimeoutMs: cfg.faults.stepTimeoutMs + 10_000, faultInjection,
      } satisfies WorkerInit));
      return pool;
    } catch (e) {
      await pool.destroy();
      throw e;
    }
  }

  /** One step: hand it out through shared memory, wait, read the results. */
  private async step(pool: WorkerPool): Promise<void> {
    const cfg = this.config;
    const N = cfg.workers;
    const p = this.progress;
    const v = this.views;
    const c = v.control;
    const step = p.step + 1;
    const { T } = this.batcher.span(p.window, p.epoch);
    Atomics.store(c, Ctl.CMD, Cmd.STEP);
    Atomics.store(c, Ctl.STEP, step);
    Atomics.store(c, Ctl.EPOCH, p.epoch);
    Atomics.store(c, Ctl.WINDOW, p.window);
    Atomics.store(c, Ctl.FLAGS, (p.window === 0 ? StepFlag.RESET_STATE : 0) | (cfg.clipNorm !== null ? StepFlag.CLIP : 0));
    Atomics.store(c, Ctl.NONFINITE, 0);
    Atomics.store(c, Ctl.OPT_STEP, p.optimizerSteps + 1);
    v.scalars[Sc.LR] = this.optimizer.lr;
    v.scalars[Sc.CLIP] = cfg.clipNorm ?? 0;
    const t0 = performance.now();
    await pool.go(step, cfg.faults.stepTimeoutMs);
    const ms = performance.now() - t0;

    let lossSum = 0;
    let tokens = 0;
    let badRank = -1;
    const workers: WorkerTiming[] = [];
    let chunksReduced = 0;
    for (let r = 0; r < N; r++) {
      chunksReduced += v.scalars[metric(r, Metric.CHUNKS_REDUCED)];
      const l = v.scalars[metric(r, Metric.LOSS_SUM)];
      if (!Number.isFinite(l) && badRank < 0) badRank = r;
      lossSum += l;
      tokens += v.scalars[metric(r, Metric.TOKENS)];
      workers.push({
        rank: r,
        msCompute: v.scalars[metric(r, Metric.MS_COMPUTE)],
        msWait: v.scalars[metric(r, Metric.MS_WAIT)],
        msReduce: v.scalars[metric(r, Metric.MS_REDUCE)],
        msUpdate: v.scalars[metric(r, Metric.MS_UPDATE)],
      });
    }
    const loss = lossSum / (N * cfg.accumulation);
    const gradNorm = v.scalars[Sc.NORM];
    const window = p.window;
    // A step replayed after a fault restart runs as before, but was reported already.
    const replay = step <= this.reported.step;
    p.step = step;
    p.window += 1;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const what = !Number.isFinite(loss) ? `loss ${loss} (worker ${badRank})` : `gradient norm ${gradNorm}`;
      const reason = `non-finite ${what} at step ${step}`;
      if (cfg.faults.onNonFinite === 'abort') {
        throw new WorkerFault({ kind: 'nonfinite', rank: Math.max(badRank, 0), step, phase: 'computing', message: `${reason}: aborting (faults.onNonFinite 'abort')` }, false);
      }
      if (replay) return;
      this.log(`trainer: step ${step} skipped: ${reason}; parameters and optimizer state unchanged`);
      await this.emit({ type: 'skip', step, epoch: p.epoch, window, loss, gradNorm, reason });
      return;
    }
    p.optimizerSteps += 1;
    p.epochLossSum += loss;
    p.epochSteps += 1;
    p.tokens += tokens;
    this.lastLoss = loss;
    const lr = this.optimizer.lr;
    if (this.schedule?.unit === 'step') this.schedule.step();
    if (replay) return;
    const reducedFraction = chunksReduced / v.chunkSums.length;
    const e: StepEvent = { type: 'step', step, epoch: p.epoch, window, loss, gradNorm, lr, T, tokens, ms, tokensPerSec: tokens / (ms / 1000), reducedFraction, workers };
    const every = this.options.logEvery ?? 0;
    if (every > 0 && step % every === 0) {
      this.log(`step ${step} | epoch ${p.epoch} window ${window} | loss ${loss.toFixed(4)} | lr ${lr.toPrecision(3)} | ${Math.round(e.tokensPerSec)} tokens/s | ${ms.toFixed(1)} ms`);
    }
    await this.emit(e);
  }

  /** After an epoch's last window: evaluation, the per-epoch schedule, the epoch event, then the next epoch. */
  private async endEpoch(pool: WorkerPool): Promise<void> {
    const cfg = this.config;
    const p = this.progress;
    let metricValue = p.epochSteps ? p.epochLossSum / p.epochSteps : NaN;
    if (cfg.eval) {
      await pool.pause(p.step, cfg.faults.stepTimeoutMs);
      metricValue = (await this.validate(pool)).loss;
      pool.startRunning();
    }
    const lr = this.optimizer.lr;
    if (p.step > this.reported.epoch) {
      await this.emit({ type: 'epoch', epoch: p.epoch, step: p.step, trainLoss: p.epochSteps ? p.epochLossSum / p.epochSteps : NaN, lr });
      this.log(`trainer: epoch ${p.epoch} done at step ${p.step}: train loss ${(p.epochLossSum / p.epochSteps).toFixed(4)}, lr ${lr}`);
    }
    if (this.schedule?.unit === 'epoch') this.schedule.step(metricValue);
    p.epoch += 1;
    p.window = 0;
    p.epochLossSum = 0;
    p.epochSteps = 0;
  }

  /** The evaluation of data.valid during training: reported with an eval event (unless a replay's). */
  private async validate(pool: WorkerPool): Promise<EvalResult> {
    const e = this.config.eval!;
    const r = await this.evaluateOn(pool, this.validSource!, e.batch, e.bptt);
    const { step, epoch } = this.progress;
    if (step > this.reported.eval) {
      this.log(`trainer: eval at step ${step}: loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)} over ${r.tokens} tokens`);
      await this.emit({ type: 'eval', step, epoch, ...r });
    }
    return r;
  }

  /** Perplexity of a stream, each worker taking its lanes; the sums are added in rank order. */
  private async evaluateOn(pool: WorkerPool, source: WorkerTokenSource, batch: number, bptt: number): Promise<EvalResult> {
    const cfg = this.config;
    const shares = await pool.all('evaluate', this.progress.step, cfg.faults.stepTimeoutMs * 10, (api) => api.evaluate({ source, batch, bptt }));
    let lossSum = 0;
    let tokens = 0;
    for (const s of shares) {
      lossSum += s.lossSum;
      tokens += s.tokens;
    }
    const loss = lossSum / tokens;
    return { loss, perplexity: Math.exp(loss), tokens };
  }

  /** evaluate()'s turn: the workers (started on first use) evaluate `source`. */
  private async evaluateNow(source: TokenSourceSpec, batch: number, bptt: number): Promise<EvalResult> {
    if (this.closed) throw new Error('Trainer.evaluate: the trainer was closed before this evaluation began');
    await this.setup();
    const shared = shareSource(source);
    // A stream too short for the lanes is named here, once, rather than by every worker.
    const tokens = openSource(shared);
    try {
      void new LaneBatcher({ tokens, batchSize: batch, bptt }); // its constructor checks the length
    } catch (e) {
      throw new RangeError(`Trainer.evaluate: ${describeSource(source)}: ${(e as Error).message}`);
    } finally {
      if (tokens instanceof TokenFile) tokens.close();
    }
    let r: EvalResult;
    try {
      this.evalPool ??= this.startWorkers(null);
      r = await this.evaluateOn(await this.evalPool, shared, batch, bptt);
    } catch (e) {
      await this.releaseEvalPool(); // after a fault, the next call starts fresh workers
      throw e;
    }
    this.log(`trainer: evaluated ${describeSource(source)} at step ${this.progress.step}: loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)} over ${r.tokens} tokens (${batch} lanes × bptt ${bptt})`);
    return r;
  }

  /** Ends the workers evaluate() keeps, if any (bounded: one that does not answer is terminated). */
  private async releaseEvalPool(): Promise<void> {
    const starting = this.evalPool;
    this.evalPool = null;
    const pool = await starting?.catch(() => null);
    await pool?.close(5000);
  }

  /** Takes the workers' parts (they are paused) and saves a checkpoint; returns it, to restart from. */
  private async checkpoint(pool: WorkerPool): Promise<CheckpointInput> {
    const cfg = this.config;
    const ck = cfg.checkpoint!;
    const t0 = performance.now();
    const parts = await pool.all('snapshot', this.progress.step, cfg.faults.stepTimeoutMs, (api) => api.snapshot());
    const snap = this.snapshot(parts.map((b) => packr.unpack(b) as WorkerSnapshot));
    const file = ck.dir ? checkpointPath(ck.dir, snap.step) : ck.path!;
    await saveCheckpoint(file, snap);
    // Older files go only once the new one is whole on disk.
    if (ck.dir) rotateCheckpoints(ck.dir, ck.keep);
    this.lastCheckpoint = file;
    const ms = performance.now() - t0;
    this.log(`trainer: checkpoint ${file} at step ${snap.step} (${ms.toFixed(0)} ms)`);
    await this.emit({ type: 'checkpoint', step: snap.step, path: file, ms });
    return snap;
  }

  /** Everything needed to go on from here, as a checkpoint (copies). `workers` null: fresh states. */
  private snapshot(workers: WorkerSnapshot[] | null): CheckpointInput {
    const cfg = this.config;
    const generators: Record<string, GeneratorState> = {};
    for (const w of workers ?? []) for (const [k, g] of Object.entries(w.generators)) generators[`worker${w.rank}.${k}`] = g;
    const extra: TrainerExtra = {
      progress: { ...this.progress },
      schedule: this.schedule?.stateDict() ?? null,
      hidden: workers ? workers.map((w) => w.hidden) : null,
      workers: cfg.workers,
      accumulation: cfg.accumulation,
      seconds: this.seconds(),
    };
    return {
      step: this.progress.step,
      config: describeConfig(cfg),
      params: stateDict(this.model),
      optimizer: this.optimizer.stateDict(),
      generators,
      // The caller's checkpoint.extra beside the trainer's own entry (config validation keeps 'trainer' free).
      extra: { ...cfg.checkpoint?.extra, trainer: extra },
    };
  }

  /** Puts the coordinator's side back to a snapshot: shared parameters and optimizer state, progress, schedule. */
  private restore(s: CheckpointInput | Checkpoint): void {
    const extra = s.extra!.trainer as StoredTrainerExtra;
    loadStateDict(this.model, s.params); // in place: the shared values
    this.optimizer.loadStateDict(s.optimizer as OptimizerState); // in place: the shared state buffers
    if (this.schedule) {
      if (!extra.schedule) throw new ConfigError('trainer config: resume: the checkpoint has no schedule state, the config has a schedule');
      this.schedule.loadStateDict(extra.schedule);
    }
    this.progress = { tokens: 0, ...extra.progress };
  }

  /** Seconds of training: this run's so far, plus those of the runs it resumed. */
  private seconds(): number {
    return this.priorSeconds + (this.startedAt === null ? 0 : (performance.now() - this.startedAt) / 1000);
  }

  private log(line: string): void {
    const log = this.options.log;
    if (log === false) return;
    (log ?? console.log)(line);
  }

  private async emit(e: TrainerEvent): Promise<void> {
    if (e.type === 'step' || e.type === 'skip') this.reported.step = e.step;
    else if (e.type === 'eval') this.reported.eval = e.step;
    else if (e.type === 'epoch') this.reported.epoch = e.step;
    for (const l of this.listeners) l(e);
    await this.options.onEvent?.(e);
  }
}

/** Trains with `config`; see Trainer. */
export function train(config: TrainerConfig, options: TrainerOptions = {}): Promise<TrainResult> {
  return new Trainer(config, options).run();
}

/**
 * The `checkpoint.extra` a trainer checkpoint was written with: its extra without the coordinator's own
 * `trainer` entry ({} for checkpoints written before the option existed). On resume:
 * `checkpointExtra(await loadCheckpoint(path))`.
 */
export function checkpointExtra(ckpt: Pick<Checkpoint, 'extra'>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(ckpt.extra ?? {}).filter(([k]) => k !== 'trainer'));
}

/** A worker's part of a checkpoint, rebuilt from the checkpoint's extra and generators. */
function workerSnapshot(ckpt: CheckpointInput, rank: number, hidden: (PlainState | null)[]): WorkerSnapshot {
  const prefix = `worker${rank}.`;
  const generators = Object.fromEntries(Object.entries(ckpt.generators ?? {}).filter(([k]) => k.startsWith(prefix)).map(([k, g]) => [k.slice(prefix.length), g]));
  return { rank, hidden, generators };
}

/** Hidden states regrouped for another worker count with the same number of micro-batches in all. */
function regroup(hidden: (PlainState | null)[][], workers: number): (PlainState | null)[][] {
  const all = hidden.flat();
  const per = all.length / workers;
  return Array.from({ length: workers }, (_, r) => all.slice(r * per, (r + 1) * per));
}

/** Ids in memory go to the workers on a SharedArrayBuffer (one copy for all); files by path. */
function shareSource(spec: TokenSourceSpec): WorkerTokenSource {
  if (typeof spec === 'string') {
    TokenFile.open(spec).close(); // fail here, with the path, rather than in every worker
    return { kind: 'file', path: spec };
  }
  const ids = new Int32Array(new SharedArrayBuffer(spec.byteLength));
  ids.set(spec);
  return { kind: 'shared', ids };
}

function openSource(src: WorkerTokenSource): TokenSource | Int32Array {
  return src.kind === 'file' ? TokenFile.open(src.path) : src.ids;
}

/** A token source for messages: its path, or how many ids it holds. */
function describeSource(spec: unknown): string {
  if (typeof spec === 'string') return spec;
  if (spec instanceof Int32Array) return `<${spec.length} tokens in memory>`;
  return spec === null ? 'null' : typeof spec === 'object' ? `a ${spec.constructor?.name ?? 'object'}` : String(spec);
}

