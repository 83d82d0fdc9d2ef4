/*
 * Config and argument checks shared by the models of this package. Messages name the model, the config key
 * or argument, and what was expected.
 */
import { LoomError, ShapeError, fmtShape, tensor, type Tensor } from '@loom/core';
import { CELL_KINDS, type CellKind } from './recurrent/index.js';

export function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function checkPositiveInts<T extends object>(where: string, c: T, keys: readonly (keyof T & string)[]): void {
  for (const k of keys) {
    const v = c[k];
    if (!Number.isInteger(v) || (v as number) <= 0) throw new LoomError(`${where}: config.${k} must be a positive integer, got ${String(v)}`);
  }
}

export function checkCell(where: string, cell: unknown): void {
  if (!CELL_KINDS.includes(cell as CellKind)) throw new LoomError(`${where}: config.cell must be one of ${CELL_KINDS.map((k) => `'${k}'`).join(', ')}, got ${String(cell)}`);
}

export function checkDropout(where: string, p: unknown): void {
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new LoomError(`${where}: config.dropout must be a number in [0, 1), got ${String(p)}`);
}

export function checkSeed(where: string, seed: unknown): void {
  if (!Number.isInteger(seed)) throw new LoomError(`${where}: config.seed must be an integer, got ${String(seed)}`);
}

export function checkDtype(where: string, dtype: unknown): void {
  if (dtype !== 'float32' && dtype !== 'float64') throw new LoomError(`${where}: config.dtype must be 'float32' or 'float64', got ${String(dtype)}`);
}

/** ids must be int32 [T, B]. */
export function checkIds(where: string, arg: string, ids: Tensor): void {
  if (ids.dtype !== 'int32') throw new LoomError(`${where}: '${arg}' must be int32 token ids, got ${ids.dtype}`);
  if (ids.rank !== 2) throw new ShapeError(`${where}: '${arg}' must be [T, B] (time-major), got ${fmtShape(ids.shape)}`);
}

/** Lengths of a padded batch [T, B], each in [1, T]: a pooled vector or an encoded source needs at least one valid step. */
export function checkSequenceLengths(where: string, lengths: readonly number[] | null | undefined, T: number, B: number): readonly number[] | null {
  if (lengths == null) return null;
  if (!Array.isArray(lengths) || lengths.length !== B) {
    throw new ShapeError(`${where}: opts.lengths must hold one length per batch entry (B = ${B}), got ${Array.isArray(lengths) ? lengths.length : String(lengths)}`);
  }
  lengths.forEach((n, b) => {
    if (!Number.isInteger(n) || n < 1 || n > T) throw new ShapeError(`${where}: opts.lengths[${b}] must be an integer in [1, ${T}] (T), got ${n}`);
  });
  return lengths;
}

export function checkBoolean(where: string, key: string, v: unknown): void {
  if (typeof v !== 'boolean') throw new LoomError(`${where}: config.${key} must be a boolean, got ${String(v)}`);
}

/** Token ids of a batch of sequences, time-major and padded: ids [T, B] with T the longest length. */
export function padSequences(seqs: readonly (readonly number[])[], pad: number, minLength = 0): { ids: Tensor; lengths: number[] } {
  if (seqs.length === 0) throw new LoomError('padSequences: needs at least one sequence');
  const lengths = seqs.map((s) => s.length);
  const T = Math.max(minLength, ...lengths), B = seqs.length;
  const data = new Int32Array(T * B).fill(pad);
  seqs.forEach((s, b) => s.forEach((id, t) => {
    if (!Number.isInteger(id)) throw new LoomError(`padSequences: sequence ${b} holds a non-integer id ${id} at position ${t}`);
    data[t * B + b] = id;
  }));
  return { ids: tensor(data, [T, B], { dtype: 'int32' }), lengths };
}
