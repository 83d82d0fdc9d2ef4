/*
 * Checkpoints: parameters, optimizer state, config, step and generator states in one file, written
 * atomically and verified on load. The file format is drawn in checkpoint/format.ts; the
 * write-then-rename is explained in checkpoint/atomic.ts.
 *
 *   saveCheckpoint(path, { step, config, params: stateDict(model), optimizer, generators, extra })
 *   const ckpt = await loadCheckpoint(path);  loadStateDict(model, ckpt.params);
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Module } from './nn/module.js';
import { fmtShape } from './errors.js';
import {
  CheckpointError, HEADER_BYTES, checkHeader, checkParamEntry, decodeCheckpoint, describe, encodeCheckpoint, plainDataProblems,
  type Checkpoint, type CheckpointInput,
} from './checkpoint/format.js';
import { isStaleTemp, parseTempName, readFileChecked, readFileCheckedSync, writeFileAtomic, writeFileAtomicSync } from './checkpoint/atomic.js';

export { CheckpointError, plainDataProblems };
export type { Checkpoint, CheckpointInput, ParamEntry } from './checkpoint/format.js';

/**
 * Saves atomically: `path` holds either its previous checkpoint or this one, whatever happens during the
 * write. The values are serialised before the first await, so training may go on changing the model while
 * the bytes go to disk.
 */
export async function saveCheckpoint(path: string, ckpt: CheckpointInput): Promise<void> {
  const chunks = encodeCheckpoint(ckpt, `saveCheckpoint: cannot save ${path}`);
  try {
    await writeFileAtomic(path, chunks);
  } catch (e) {
    throw writeError('saveCheckpoint', path, e);
  }
}

/** The synchronous form of saveCheckpoint, for signal handlers and exit paths. */
export function saveCheckpointSync(path: string, ckpt: CheckpointInput): void {
  const chunks = encodeCheckpoint(ckpt, `saveCheckpointSync: cannot save ${path}`);
  try {
    writeFileAtomicSync(path, chunks);
  } catch (e) {
    throw writeError('saveCheckpointSync', path, e);
  }
}

/** Loads and verifies a checkpoint: header, length, SHA-256, then structure. Throws CheckpointError. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await readFileChecked(path, HEADER_BYTES, (head, size) => checkHeader(head, size, path));
  } catch (e) {
    throw readError(path, e);
  }
  return decodeCheckpoint(bytes, path);
}

export function loadCheckpointSync(path: string): Checkpoint {
  let bytes: Buffer;
  try {
    bytes = readFileCheckedSync(path, HEADER_BYTES, (head, size) => checkHeader(head, size, path));
  } catch (e) {
    throw readError(path, e);
  }
  return decodeCheckpoint(bytes, path);
}

function writeError(fn: string, path: string, e: unknown): CheckpointError {
  return new CheckpointError(`${fn}: could not write ${path}: ${(e as Error).message}; the file previously at that path (if any) is unchanged`, { cause: e });
}

function readError(path: string, e: unknown): CheckpointError {
  if (e instanceof CheckpointError) return e;
  return new CheckpointError(`checkpoint ${path} could not be read: ${(e as Error).message}`, { cause: e });
}

/** Copies of a module's parameter values, keyed by their namedParameters() names, in that order. */
export function stateDict(module: Module): Checkpoint['params'] {
  const out: Checkpoint['params'] = {};
  for (const [name, p] of module.namedParameters()) {
    if (p.dtype !== 'float32' && p.dtype !== 'float64') {
      throw new CheckpointError(`stateDict: parameter '${name}' is ${p.dtype}; checkpoints hold float32 and float64 parameters`);
    }
    const data = p.data as Float32Array | Float64Array;
    out[name] = { shape: [...p.shape], dtype: p.dtype, data: data.slice() }; // slice(): a copy, never a view into shared memory
  }
  return out;
}

export interface LoadStateDictOptions {
  /**
   * true (default): every parameter of the module must be in `params` and every entry of `params` must
   * be a parameter. false: names on one side only are skipped (fine-tuning from a partial checkpoint).
   * Shapes and dtypes must match either way.
   */
  strict?: boolean;
}

/**
 * Writes checkpoint values into a module's parameters in place. Each parameter keeps its storage object,
 * so parameters that are views into a flat buffer (flattenParameters) stay views. Everything is checked
 * before anything is written: on a mismatch one CheckpointError lists every missing name, unexpected name
 * and shape or dtype difference, and the module is untouched.
 */
export function loadStateDict(module: Module, params: Checkpoint['params'], opts: LoadStateDictOptions = {}): void {
  const strict = opts.strict ?? true;
  if (typeof params !== 'object' || params === null) throw new CheckpointError(`loadStateDict: 'params' is ${describe(params)}, expected a record of { shape, dtype, data }`);
  if ((params as Record<string, unknown>).format === 'loom-checkpoint') {
    throw new CheckpointError("loadStateDict: 'params' is a whole checkpoint; pass checkpoint.params");
  }
  const missing: string[] = [];
  const mismatched: string[] = [];
  const moves: [Float32Array | Float64Array, Float32Array | Float64Array][] = [];
  const own = module.namedParameters();
  const names = new Set(own.map(([n]) => n));
  for (const [name, p] of own) {
    if (!Object.hasOwn(params, name)) {
      if (strict) missing.push(`'${name}' ${fmtShape(p.shape)}`);
      continue;
    }
    const entry: unknown = params[name];
    const problems: string[] = [];
    if (!checkParamEntry(`'${name}'`, entry, problems)) {
      mismatched.push(...problems);
      continue;
    }
    if (entry.shape.length !== p.shape.length || entry.shape.some((d, i) => d !== p.shape[i])) {
      mismatched.push(`'${name}': the checkpoint has shape ${fmtShape(entry.shape)}, the module ${fmtShape(p.shape)}`);
    } else if (entry.dtype !== p.dtype) {
      mismatched.push(`'${name}': the checkpoint has dtype ${entry.dtype}, the module ${p.dtype}`);
    } else if (p.data !== p.storage) {
      mismatched.push(`'${name}': lives on backend ${p.backend.name}, which has no host storage to load into`);
    } else {
      moves.push([p.storage as Float32Array | Float64Array, entry.data]);
    }
  }
  const unexpected = strict ? Object.keys(params).filter((n) => !names.has(n)).map((n) => `'${n}' ${fmtShape(params[n]?.shape ?? [])}`) : [];
  const parts: string[] = [];
  if (missing.length) parts.push(`missing from the checkpoint (${missing.length}): ${missing.join(', ')}`);
  if (unexpected.length) parts.push(`not parameters of the module (${unexpected.length}): ${unexpected.join(', ')}`);
  if (mismatched.length) parts.push(`mismatched (${mismatched.length}):\n    ${mismatched.join('\n    ')}`);
  if (parts.length) {
    const count = missing.length + unexpected.length + mismatched.length;
    throw new CheckpointError(`loadStateDict: the checkpoint does not fit the module (${count} ${count === 1 ? 'problem' : 'problems'}); nothing was loaded:\n  ${parts.join('\n  ')}`);
  }
  for (const [dst, src] of moves) dst.set(src);
}

/*
 * A directory of checkpoints, one per saved step: ckpt-<step, 8+ digits>.loom. Zero-padding makes the
 * names sort by step; temporary files (ckpt-....loom.tmp-<pid>-<hex>) never match.
 */
const CKPT = /^ckpt-(\d{8,})\.loom$/;

/** The file for `step` in `dir`. */
export function checkpointPath(dir: string, step: number): string {
  if (!Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`checkpointPath: step must be a non-negative integer, got ${step}`);
  return join(dir, `ckpt-${String(step).padStart(8, '0')}.loom`);
}

/** The checkpoints in `dir` (named by checkpointPath), oldest step first; [] when `dir` does not exist. */
export function listCheckpoints(dir: string): { path: string; step: number }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .flatMap((name) => {
      const m = CKPT.exec(name);
      return m ? [{ path: join(dir, name), step: Number(m[1]) }] : [];
    })
    .sort((a, b) => a.step - b.step);
}

/**
 * Deletes all but the newest `keep` checkpoints in `dir`, and the temporary files of writers that died
 * mid-write (a live writer's are left alone). Returns the deleted paths.
 */
export function rotateCheckpoints(dir: string, keep: number): string[] {
  if (!Number.isSafeInteger(keep) || keep < 1) throw new CheckpointError(`rotateCheckpoints: keep must be a positive integer, got ${keep}`);
  const all = listCheckpoints(dir);
  const removed = all.slice(0, Math.max(0, all.length - keep)).map((c) => c.path);
  if (fs.existsSync(dir)) {
    for (const name of fs.readdirSync(dir)) {
      const t = parseTempName(name);
      if (t && CKPT.test(t.target) && isStaleTemp(name)) removed.push(join(dir, name));
    }
  }
  for (const p of removed) fs.rmSync(p, { force: true });
  return removed;
}
