/*
 * What the coordinator needs of a model, how a model is found from its ModelSpec, and how a carried
 * hidden state becomes plain data for checkpoints and back.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Generator, Module, Tensor, fromStorage, tensor, type DType } from '@loom/core';
import { ConfigError, type ModelSpec } from './config.js';

/**
 * A model trained with truncated BPTT: @loom/models' RNNLanguageModel fits, and so does any Module with
 * these two methods. `ids` and `targets` are int32 [T, B] (time-major); `loss` is the mean over the T·B
 * positions; the state is whatever the model carries between windows (tensors in plain objects/arrays).
 */
export interface SequenceModel<S = unknown> extends Module {
  zeroState(batchSize: number): S;
  loss(ids: Tensor, targets: Tensor, state: S): { loss: Tensor; state: S };
}

/** A carried state as plain data: tensors become { shape, dtype, data } (copies). */
export type PlainState = PlainTensor | PlainState[] | { [key: string]: PlainState } | null;
export interface PlainTensor {
  tensor: true;
  shape: number[];
  dtype: DType;
  data: Float32Array | Float64Array | Int32Array;
}

/**
 * Resolves the spec's module to a file: URL, the same for the coordinator and every worker: a file: URL
 * or an absolute path as it is; a package name as the coordinator package resolves it (so '@loom/models'
 * works), else as the current directory does.
 */
export function resolveModelUrl(spec: Pick<ModelSpec, 'module'>, key = 'model.module'): string {
  const m = spec.module;
  if (m.startsWith('file:')) return m;
  if (path.isAbsolute(m)) return pathToFileURL(m).href;
  for (const base of [import.meta.url, pathToFileURL(path.join(process.cwd(), 'noop.js')).href]) {
    try {
      return pathToFileURL(createRequire(base).resolve(m)).href;
    } catch {
      // try the next base
    }
  }
  throw new ConfigError(`trainer config: ${key} ${JSON.stringify(m)} cannot be resolved from @loom/coordinator nor from ${process.cwd()}`);
}

/**
 * import(), falling back to require() for TypeScript sources in worker threads: on Node 20, tsx's ESM
 * hooks are not installed in worker threads but its CommonJS hook is (development only; the published
 * packages are JavaScript).
 */
export async function importModule(url: string): Promise<Record<string, unknown>> {
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw e;
    return createRequire(url)(fileURLToPath(url)) as Record<string, unknown>;
  }
}

/**
 * Imports a backend module (a plug-in backend registers itself on import). `prepare(name)` awaits the
 * module's `prepareBackend(name)` export when it has one: asynchronous set-up of the chosen backend, such as
 * compiling WebAssembly, done in each thread that will use it, before setBackend(name).
 */
export async function importBackendModule(url: string): Promise<{ prepare(name: string): Promise<void> }> {
  const mod = await importModule(url);
  return {
    prepare: async (name) => {
      if (typeof mod.prepareBackend === 'function') await (mod.prepareBackend as (name: string) => unknown)(name);
    },
  };
}

/** Builds the model of a spec whose module is already resolved: `new Export(config)` or `Export(config)`. */
export async function buildModel(url: string, exportName: string, config: unknown): Promise<SequenceModel> {
  const mod = await importModule(url);
  const make = mod[exportName];
  if (typeof make !== 'function') {
    throw new ConfigError(`trainer config: model.export '${exportName}' is not a class or function exported by ${url} (exports: ${Object.keys(mod).join(', ')})`);
  }
  const isClass = /^class[\s{]/.test(Function.prototype.toString.call(make));
  const model: unknown = isClass ? new (make as new (c: unknown) => unknown)(config) : await (make as (c: unknown) => unknown)(config);
  if (!(model instanceof Module)) throw new ConfigError(`trainer config: model.export '${exportName}' did not give a Module`);
  for (const method of ['loss', 'zeroState'] as const) {
    if (typeof (model as unknown as Record<string, unknown>)[method] !== 'function') {
      throw new ConfigError(`trainer config: the model built by '${exportName}' has no ${method}() method (needed: loss(ids, targets, state) → { loss, state } and zeroState(batchSize))`);
    }
  }
  return model as SequenceModel;
}

/** The model's own generators (Generator fields, e.g. RNNLanguageModel.generator for dropout), by field name. */
export function modelGenerators(model: Module): [string, Generator][] {
  return Object.entries(model).filter((e): e is [string, Generator] => e[1] instanceof Generator);
}

/** A state cut from its graph: every tensor in it detached. */
export function detachState<S>(state: S): S {
  return mapTensors(state, (t) => t.detach()) as S;
}

/**
 * A carried state cut from the graph and copied into storage of its own: what outlives a StoragePool run,
 * whose arrays the next step reuses.
 */
export function copyState<S>(state: S): S {
  return mapTensors(state, (t) => fromStorage(t.backend.fromArray(t.dtype, t.backend.read(t.storage, t.dtype)), t.shape, t.dtype, t.backend)) as S;
}

/** A state as plain data (copies of the tensors' values). */
export function stateToPlain(state: unknown): PlainState {
  if (state === null || state === undefined) return null;
  if (state instanceof Tensor) {
    const data = state.data as Float32Array | Float64Array | Int32Array;
    return { tensor: true, shape: [...state.shape], dtype: state.dtype, data: data.slice() };
  }
  if (Array.isArray(state)) return state.map(stateToPlain);
  if (typeof state === 'object') return Object.fromEntries(Object.entries(state).map(([k, v]) => [k, stateToPlain(v)]));
  throw new TypeError(`stateToPlain: a carried state holds ${typeof state}; expected tensors in arrays and plain objects`);
}

/** The inverse of stateToPlain. */
export function plainToState(p: PlainState): unknown {
  if (p === null) return null;
  if (Array.isArray(p)) return p.map(plainToState);
  if ((p as PlainTensor).tensor === true) {
    const t = p as PlainTensor;
    return tensor(t.data, t.shape, { dtype: t.dtype });
  }
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, plainToState(v as PlainState)]));
}

/** True when every value of every tensor in the state is finite. */
export function stateIsFinite(state: unknown): boolean {
  let ok = true;
  mapTensors(state, (t) => {
    const d = t.data;
    for (let i = 0; ok && i < d.length; i++) if (!Number.isFinite(d[i])) ok = false;
    return t;
  });
  return ok;
}

function mapTensors(v: unknown, f: (t: Tensor) => Tensor): unknown {
  if (v instanceof Tensor) return f(v);
  if (Array.isArray(v)) return v.map((x) => mapTensors(x, f));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapTensors(x, f)]));
  return v;
}
