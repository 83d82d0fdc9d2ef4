/*
 * The trainer's one config: a type with commented defaults, the defaults object beside it, and one
 * validation pass at the boundary whose messages name the key ("trainer config: globalBatch (20) is not
 * divisible by workers (3)"). The resolved config is plain data: it is printed once and stored in every
 * checkpoint.
 */
import {
  OPTIMIZER_NAMES, PLATEAU_DEFAULTS, plainDataProblems, resolveOptions,
  type OptimizerKind, type OptionsInput, type PlateauOptions,
} from '@loom/core';
import type { VariableLengthOptions } from '@loom/data';
import { makeSchedule } from './schedule.js';

/** How every worker builds the same model: `new (await import(module))[export](config)`. */
export interface ModelSpec {
  /** A package name ('@loom/models'), an absolute path, or a file: URL. */
  module: string;
  /** The export: a Module class (called with `new`) or a factory function, given `config`. */
  export: string;
  /** Plain data handed to the constructor (the same in every worker). */
  config: unknown;
}

/** A token file's path, or the ids themselves (copied once into shared memory for the workers). */
export type TokenSourceSpec = string | Int32Array;

export interface DataConfig {
  /** Training tokens: TBPTT lanes over them (@loom/data's LaneBatcher). */
  train: TokenSourceSpec;
  /** Validation tokens for evaluate() and the evaluations of `eval`. Default: none. */
  valid?: TokenSourceSpec | null;
  /** Variable-length windows (AWD-LSTM); every worker draws the same lengths. Default: fixed `bptt`. */
  variableLength?: VariableLengthOptions | null;
}

/** The optimizer: `kind` plus that optimizer's options (@loom/core's names and defaults). */
export type OptimizerConfig = { [K in OptimizerKind]: { kind: K } & OptionsInput<K> }[OptimizerKind];

/** An lr schedule (@loom/core's schedules); per-epoch ones step at the end of each epoch. */
export type ScheduleConfig =
  | { kind: 'step'; stepSize: number; gamma?: number }
  | { kind: 'exponential'; gamma: number }
  | { kind: 'epochDecay'; constantEpochs: number; factor: number }
  | { kind: 'warmupCosine'; warmupSteps: number; totalSteps: number; minLr?: number }
  | ({ kind: 'plateau' } & Partial<PlateauOptions>);

export interface FaultConfig {
  /** Restarts from the last checkpoint after a worker fault before giving up. Default 2. */
  maxRestarts: number;
  /** A step that has not finished after this long is a fault naming the late workers. Default 120 000. */
  stepTimeoutMs: number;
  /** Starting the workers (import, model build) may take this long. Default 120 000. */
  startTimeoutMs: number;
  /** A NaN or infinite loss or gradient: 'skip' the step and report it, or 'abort' the run. Default 'skip'. */
  onNonFinite: 'skip' | 'abort';
}

/**
 * A testing aid: makes worker `rank` fail at `step` on purpose, to check that faults are survived or
 * reported. 'throw' raises an error, 'exit' ends the thread, 'hang' loops forever, 'nan' makes the loss
 * (and so the gradient) NaN.
 */
export interface FaultInjection {
  rank: number;
  step: number;
  kind: 'throw' | 'exit' | 'hang' | 'nan';
  /** The attempts in which it fires (0 is the first run, 1 the run after the first restart, ...). Default [0]. */
  attempts?: number[];
}

/** Where checkpoints go: give `path` (one file) or `dir` (one file per save). */
export interface CheckpointConfig {
  /** One checkpoint file, replaced atomically at every save (the previous one stays whole until then). */
  path?: string;
  /**
   * A folder with one file per save, ckpt-<step>.loom (@loom/core's checkpointPath, so listCheckpoints
   * finds the newest), each written atomically; the folder is created if missing.
   */
  dir?: string;
  /** With `dir`: how many of the newest checkpoints stay; older ones are deleted after each save. Default 1. */
  keep?: number;
  /** Steps between saves; 0 saves only at the end (and on SIGINT). Default 0. */
  every?: number;
  /**
   * Your own data, written into every checkpoint's `extra` beside the trainer's state (the key `trainer`
   * is the coordinator's) and read back with checkpointExtra(checkpoint): a script's config, a
   * vocabulary. Plain data as checkpoints hold it (objects, arrays, strings, numbers, booleans, null, typed
   * arrays, ...: docs/checkpoints.md), checked here with the path to anything else. Default {}.
   */
  extra?: Record<string, unknown>;
}

/** A CheckpointConfig with its defaults filled in; exactly one of `path` and `dir` is set. */
export interface ResolvedCheckpointConfig {
  path: string | null;
  dir: string | null;
  keep: number;
  every: number;
  extra: Record<string, unknown>;
}

export interface EvalConfig {
  /** Steps between evaluations of data.valid; 0 evaluates at the end of each epoch only. Default 0. */
  every?: number;
  /** Lanes of the validation stream (split over the workers). Default: globalBatch. */
  batch?: number;
  /** Window length for evaluation. Default: bptt. */
  bptt?: number;
}

export interface TrainerConfig {
  model: ModelSpec;
  data: DataConfig;
  optimizer: OptimizerConfig;
  /** Default: none (constant lr). */
  schedule?: ScheduleConfig | null;
  /** N, worker threads. Default 1. */
  workers?: number;
  /** B, lanes over all workers (the single-process batch size); each worker gets B/N. Default 20. */
  globalBatch?: number;
  /** TBPTT window length. Default 35. */
  bptt?: number;
  /**
   * Micro-batches per worker per step: a worker's B/N lanes are split into this many groups, run one
   * after the other, their gradients summed locally without synchronisation. The step is the same as with
   * 1 (same lanes, same mean loss); it only trades memory for time. Default 1.
   */
  accumulation?: number;
  /** Passes over the training tokens. Default 1. */
  epochs?: number;
  /** Stop after this many optimizer steps in all (counting from step 0, also when resuming). Default: none. */
  maxSteps?: number | null;
  /** Global-norm gradient clipping (over all workers' reduced gradient). Default 5; null turns it off. */
  clipNorm?: number | null;
  /** Seeds every worker's default generator (worker r: seed + 1 + r) and the main thread's before building the model. Default 1234. */
  seed?: number;
  /** The workers' compute backend (a @loom/core backend name). Default 'wasm'. */
  backend?: string;
  /**
   * A module imported (in the coordinator and in every worker) before the backend is chosen: a plug-in
   * backend registers itself there with registerBackend(). A package name, an absolute path or a file:
   * URL. Default: none (the built-in backends).
   */
  backendModule?: string | null;
  /**
   * Workers hand the same host arrays out again every step (@loom/core's StoragePool) instead of allocating
   * fresh ones: this removes the page faults of ~50 MB of new arrays per step, which with several workers in
   * one process also slow each other down. The model's loss() must then not keep tensors it creates past the
   * step (the carried state is copied out by the worker). Default true; false for a model that caches tensors.
   */
  recycleStorage?: boolean;
  /**
   * Skip the parts of the gradient that are zero in every worker: chunks of CHUNK floats (the embedding rows
   * no token of the step used, for a language model) are neither reduced nor, for an optimizer on which a
   * zero gradient has no effect (plain SGD), updated. Bit for bit the same result as false, which reduces
   * and updates everything; faster when a large embedding table is mostly untouched by one step. Default true.
   */
  skipZeroGradients?: boolean;
  /** Evaluation of data.valid (needs data.valid). Default: at the end of each epoch when data.valid is given. */
  eval?: EvalConfig | null;
  /**
   * Checkpoints. Default: none; a restart after a fault then goes back to where this run started (step 0,
   * or the `resume` checkpoint) and replays every step since.
   */
  checkpoint?: CheckpointConfig | null;
  /** A checkpoint file to resume from. Default: none. */
  resume?: string | null;
  faults?: Partial<FaultConfig>;
  /** Testing aid; see FaultInjection. Default: none. */
  faultInjection?: FaultInjection | null;
}

export const TRAINER_DEFAULTS = {
  schedule: null,
  workers: 1,
  globalBatch: 20,
  bptt: 35,
  accumulation: 1,
  epochs: 1,
  maxSteps: null,
  clipNorm: 5,
  seed: 1234,
  backend: 'wasm',
  backendModule: null,
  recycleStorage: true,
  skipZeroGradients: true,
  eval: null,
  checkpoint: null,
  resume: null,
  faults: { maxRestarts: 2, stepTimeoutMs: 120_000, startTimeoutMs: 120_000, onNonFinite: 'skip' } as FaultConfig,
  faultInjection: null,
} satisfies Partial<TrainerConfig>;

export interface ResolvedConfig {
  model: ModelSpec;
  data: { train: TokenSourceSpec; valid: TokenSourceSpec | null; variableLength: VariableLengthOptions | null };
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig | null;
  workers: number;
  globalBatch: number;
  bptt: number;
  accumulation: number;
  epochs: number;
  maxSteps: number | null;
  clipNorm: number | null;
  seed: number;
  backend: string;
  backendModule: string | null;
  recycleStorage: boolean;
  skipZeroGradients: boolean;
  eval: Required<EvalConfig> | null;
  checkpoint: ResolvedCheckpointConfig | null;
  resume: string | null;
  faults: FaultConfig;
  faultInjection: Required<FaultInjection> | null;
}

/** A config that breaks a rule; the message names the key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const KEYS: readonly (keyof TrainerConfig)[] = [
  'model', 'data', 'optimizer', 'schedule', 'workers', 'globalBatch', 'bptt', 'accumulation', 'epochs', 'maxSteps',
  'clipNorm', 'seed', 'backend', 'backendModule', 'recycleStorage', 'skipZeroGradients', 'eval', 'checkpoint', 'resume', 'faults', 'faultInjection',
];

const fail = (msg: string): never => {
  throw new ConfigError(`trainer config: ${msg}`);
};
const show = (v: unknown): string =>
  typeof v === 'string' ? `'${v}'` : v instanceof Int32Array ? `Int32Array(${v.length})` : Array.isArray(v) ? `[${v.map(show).join(', ')}]` : String(v);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function source(key: string, v: unknown): TokenSourceSpec {
  return isTokenSource(v) ? v : fail(`${key} must be a token file path or a non-empty Int32Array of ids, got ${show(v)}`);
}

function checkKeys(where: string, v: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) fail(`unknown key '${where}${k}' (known: ${known.join(', ')})`);
  }
}

function int(key: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`${key} must be an integer >= ${min}, got ${show(v)}`);
  return v as number;
}

function positive(key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`${key} must be a positive number, got ${show(v)}`);
  return v as number;
}

/** Fills in the defaults and checks every key; throws ConfigError naming the first key that is wrong. */
export function resolveConfig(input: TrainerConfig): ResolvedConfig {
  if (!isRecord(input)) fail(`expected an object, got ${show(input)}`);
  checkKeys('', input as unknown as Record<string, unknown>, KEYS);
  const c = { ...TRAINER_DEFAULTS, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as Record<string, unknown>;

  // model
  const m = c.model;
  if (!isRecord(m)) fail(`model must be { module, export, config }, got ${show(m)}`);
  const model = m as Record<string, unknown>;
  checkKeys('model.', model, ['module', 'export', 'config']);
  if (typeof model.module !== 'string' || model.module === '') fail(`model.module must be a package name, a path or a file: URL, got ${show(model.module)}`);
  if ((model.module as string).startsWith('.')) fail(`model.module ${JSON.stringify(model.module)} is relative: give a package name, an absolute path or a file: URL (workers do not share your module's directory)`);
  if (typeof model.export !== 'string' || model.export === '') fail(`model.export must name an export of ${show(model.module)}, got ${show(model.export)}`);
  if (!('config' in model)) fail('model.config is required (the plain data every worker builds the model from)');

  // data
  if (!isRecord(c.data)) fail(`data must be { train, valid?, variableLength? }, got ${show(c.data)}`);
  const d = c.data as Record<string, unknown>;
  checkKeys('data.', d, ['train', 'valid', 'variableLength']);
  const data = {
    train: source('data.train', d.train),
    valid: d.valid == null ? null : source('data.valid', d.valid),
    variableLength: d.variableLength == null ? null : (d.variableLength as VariableLengthOptions),
  };
  if (data.variableLength !== null && !isRecord(data.variableLength)) fail(`data.variableLength must be { seed, pShort?, std?, minLength? }, got ${show(data.variableLength)}`);

  // optimizer: @loom/core checks the options; its message is kept, prefixed with the key
  if (!isRecord(c.optimizer)) fail(`optimizer must be { kind, lr, ... }, got ${show(c.optimizer)}`);
  const { kind, ...options } = c.optimizer as Record<string, unknown>;
  if (typeof kind !== 'string' || !(kind in OPTIMIZER_NAMES)) fail(`optimizer.kind must be one of ${Object.keys(OPTIMIZER_NAMES).map(show).join(', ')}, got ${show(kind)}`);
  try {
    resolveOptions(kind as OptimizerKind, options as never);
  } catch (e) {
    fail(`optimizer: ${(e as Error).message}`);
  }

  // schedule
  let schedule: ScheduleConfig | null = null;
  if (c.schedule !== null) {
    const s = c.schedule;
    const kinds = ['step', 'exponential', 'epochDecay', 'warmupCosine', 'plateau'];
    if (!isRecord(s) || !kinds.includes(s.kind as string)) fail(`schedule.kind must be one of ${kinds.map(show).join(', ')}, got ${show(isRecord(s) ? s.kind : s)}`);
    const known: Record<string, string[]> = {
      step: ['stepSize', 'gamma'], exponential: ['gamma'], epochDecay: ['constantEpochs', 'factor'],
      warmupCosine: ['warmupSteps', 'totalSteps', 'minLr'], plateau: Object.keys(PLATEAU_DEFAULTS),
    };
    checkKeys('schedule.', s as Record<string, unknown>, ['kind', ...known[(s as { kind: string }).kind]]);
    schedule = s as ScheduleConfig;
    try {
      makeSchedule(schedule, { lr: (c.optimizer as { lr?: number }).lr ?? 1e-3 }); // @loom/core checks the options
    } catch (e) {
      fail(`schedule: ${(e as Error).message}`);
    }
  }

  // sizes
  const workers = int('workers', c.workers, 1);
  const globalBatch = int('globalBatch', c.globalBatch, 1);
  const bptt = int('bptt', c.bptt, 1);
  const accumulation = int('accumulation', c.accumulation, 1);
  if (globalBatch % (workers * accumulation) !== 0) {
    fail(accumulation === 1
      ? `globalBatch (${globalBatch}) is not divisible by workers (${workers}): every worker needs the same number of lanes`
      : `globalBatch (${globalBatch}) is not divisible by workers × accumulation (${workers} × ${accumulation}): every micro-batch needs the same number of lanes`);
  }
  const epochs = int('epochs', c.epochs, 1);
  const maxSteps = c.maxSteps === null ? null : int('maxSteps', c.maxSteps, 1);
  const clipNorm = c.clipNorm === null ? null : positive('clipNorm', c.clipNorm);
  const seed = int('seed', c.seed, 0);
  if (typeof c.backend !== 'string' || c.backend === '') fail(`backend must be a backend name such as 'wasm' or 'reference', got ${show(c.backend)}`);
  if (typeof c.recycleStorage !== 'boolean') fail(`recycleStorage must be true or false, got ${show(c.recycleStorage)}`);
  const recycleStorage = c.recycleStorage as boolean;
  if (typeof c.skipZeroGradients !== 'boolean') fail(`skipZeroGradients must be true or false, got ${show(c.skipZeroGradients)}`);
  const skipZeroGradients = c.skipZeroGradients as boolean;
  const backendModule = c.backendModule === null ? null : typeof c.backendModule === 'string' && c.backendModule !== '' && !c.backendModule.startsWith('.')
    ? c.backendModule : fail(`backendModule must be a package name, an absolute path or a file: URL, got ${show(c.backendModule)}`);

  // eval
  let evalConfig: Required<EvalConfig> | null = null;
  if (c.eval !== null) {
    if (!isRecord(c.eval)) fail(`eval must be { every?, batch?, bptt? }, got ${show(c.eval)}`);
    const e = c.eval as Record<string, unknown>;
    checkKeys('eval.', e, ['every', 'batch', 'bptt']);
    evalConfig = {
      every: int('eval.every', e.every ?? 0, 0),
      batch: int('eval.batch', e.batch ?? globalBatch, 1),
      bptt: int('eval.bptt', e.bptt ?? bptt, 1),
    };
    if (data.valid === null) fail('eval needs data.valid (the validation tokens)');
  } else if (data.valid !== null) {
    evalConfig = { every: 0, batch: globalBatch, bptt };
  }
  if (evalConfig && evalConfig.batch % workers !== 0) fail(`eval.batch (${evalConfig.batch}) is not divisible by workers (${workers}): every worker evaluates the same number of lanes`);

  // checkpoint, resume
  let checkpoint: ResolvedCheckpointConfig | null = null;
  if (c.checkpoint !== null) {
    if (!isRecord(c.checkpoint)) fail(`checkpoint must be { path or dir, keep?, every?, extra? }, got ${show(c.checkpoint)}`);
    const k = c.checkpoint as Record<string, unknown>;
    checkKeys('checkpoint.', k, ['path', 'dir', 'keep', 'every', 'extra']);
    if (k.path !== undefined && k.dir !== undefined) fail('checkpoint: give path (one file) or dir (a file per save), not both');
    if (k.path === undefined && k.dir === undefined) fail('checkpoint needs path (one file, replaced at every save) or dir (a folder of ckpt-<step>.loom files)');
    if (k.path !== undefined && (typeof k.path !== 'string' || k.path === '')) fail(`checkpoint.path must be a file path, got ${show(k.path)}`);
    if (k.dir !== undefined && (typeof k.dir !== 'string' || k.dir === '')) fail(`checkpoint.dir must be a folder path, got ${show(k.dir)}`);
    if (k.keep !== undefined && k.dir === undefined) fail('checkpoint.keep needs checkpoint.dir (checkpoint.path is one file, replaced at every save)');
    const extra = k.extra ?? {};
    if (!isRecord(extra)) fail(`checkpoint.extra must be an object of your own data, got ${show(extra)}`);
    if (Object.hasOwn(extra as object, 'trainer')) fail("checkpoint.extra.trainer is reserved: the coordinator keeps its own state under the checkpoint's extra.trainer");
    const problems = plainDataProblems(extra, 'checkpoint.extra');
    if (problems.length) fail(problems.join('; '));
    checkpoint = {
      path: (k.path as string | undefined) ?? null,
      dir: (k.dir as string | undefined) ?? null,
      keep: int('checkpoint.keep', k.keep ?? 1, 1),
      every: int('checkpoint.every', k.every ?? 0, 0),
      extra: extra as Record<string, unknown>,
    };
  }
  const resume = c.resume === null ? null : typeof c.resume === 'string' && c.resume !== '' ? c.resume : fail(`resume must be a checkpoint file path, got ${show(c.resume)}`);

  // faults
  if (!isRecord(c.faults)) fail(`faults must be an object, got ${show(c.faults)}`);
  checkKeys('faults.', c.faults as Record<string, unknown>, Object.keys(TRAINER_DEFAULTS.faults));
  const f = { ...TRAINER_DEFAULTS.faults, ...(c.faults as Partial<FaultConfig>) };
  const faults: FaultConfig = {
    maxRestarts: int('faults.maxRestarts', f.maxRestarts, 0),
    stepTimeoutMs: positive('faults.stepTimeoutMs', f.stepTimeoutMs),
    startTimeoutMs: positive('faults.startTimeoutMs', f.startTimeoutMs),
    onNonFinite: f.onNonFinite === 'skip' || f.onNonFinite === 'abort' ? f.onNonFinite : fail(`faults.onNonFinite must be 'skip' or 'abort', got ${show(f.onNonFinite)}`),
  };

  let faultInjection: Required<FaultInjection> | null = null;
  if (c.faultInjection !== null) {
    if (!isRecord(c.faultInjection)) fail(`faultInjection must be { rank, step, kind, attempts? }, got ${show(c.faultInjection)}`);
    const fi = c.faultInjection as Record<string, unknown>;
    checkKeys('faultInjection.', fi, ['rank', 'step', 'kind', 'attempts']);
    const rank = int('faultInjection.rank', fi.rank, 0);
    if (rank >= workers) fail(`faultInjection.rank (${rank}) must be below workers (${workers})`);
    const kinds = ['throw', 'exit', 'hang', 'nan'];
    if (!kinds.includes(fi.kind as string)) fail(`faultInjection.kind must be one of ${kinds.map(show).join(', ')}, got ${show(fi.kind)}`);
    const attempts = fi.attempts ?? [0];
    if (!Array.isArray(attempts) || !attempts.every((a) => Number.isInteger(a) && a >= 0)) fail(`faultInjection.attempts must be a list of non-negative integers, got ${show(attempts)}`);
    faultInjection = { rank, step: int('faultInjection.step', fi.step, 1), kind: fi.kind as FaultInjection['kind'], attempts: attempts as number[] };
  }

  return {
    model: { module: model.module as string, export: model.export as string, config: model.config },
    data, optimizer: c.optimizer as OptimizerConfig, schedule,
    workers, globalBatch, bptt, accumulation, epochs, maxSteps, clipNorm, seed, backend: c.backend as string, backendModule, recycleStorage, skipZeroGradients,
    eval: evalConfig, checkpoint, resume, faults, faultInjection,
  };
}

/**
 * The config as stored in checkpoints and printed: in-memory token arrays and checkpoint.extra (which may
 * be large, and is in every checkpoint's extra anyway) are described, not copied.
 */
export function describeConfig(c: ResolvedConfig): Record<string, unknown> {
  const src = (s: TokenSourceSpec | null): unknown => (s instanceof Int32Array ? `<${s.length} tokens in memory>` : s);
  const checkpoint = c.checkpoint && { ...c.checkpoint, extra: `<keys: ${Object.keys(c.checkpoint.extra).join(', ') || 'none'}>` };
  return { ...c, data: { ...c.data, train: src(c.data.train), valid: src(c.data.valid) }, checkpoint };
}

/** A token source as data.train, data.valid and Trainer.evaluate() take it: a non-empty path or Int32Array. */
export function isTokenSource(v: unknown): v is TokenSourceSpec {
  return (typeof v === 'string' && v.length > 0) || (v instanceof Int32Array && v.length > 0);
}
