/*
 * The one loop over time. It handles direction and variable lengths for any RecurrentCell; stacking
 * layers and directions is layer.ts. Time-major: xp is [T, B, G·H], outputs [T, B, H].
 */
import { concat, reshape, slice, tensor, where, unsqueeze, ShapeError, fmtShape, type Tensor } from '@loom/core';
import type { CellState, RecurrentCell } from './cells.js';

export interface UnrollOptions {
  /** Run from t = T-1 down to 0 (the backward direction of a bidirectional layer). */
  reverse?: boolean;
  /**
   * Valid steps per batch entry (each in [0, T]); entries shorter than T behave like PyTorch's packed
   * sequences: outputs past an entry's length are 0, and its final state is the state after its last
   * valid step. In reverse, an entry's sequence is reversed within its length (it starts at t = len-1).
   */
  lengths?: readonly number[] | null;
}

export interface UnrollResult {
  output: Tensor; // [T, B, H]
  state: CellState; // final state, h (and c) [B, H]
}

/** Checks lengths against [T, B]; returns null when every entry has all T steps (no masking needed). */
export function checkLengths(where: string, lengths: readonly number[] | null | undefined, T: number, B: number): readonly number[] | null {
  if (lengths == null) return null;
  if (lengths.length !== B) throw new ShapeError(`${where}: opts.lengths has ${lengths.length} entries, the batch has ${B}`);
  let full = true;
  lengths.forEach((n, b) => {
    if (!Number.isInteger(n) || n < 0 || n > T) throw new ShapeError(`${where}: opts.lengths[${b}] must be an integer in [0, ${T}] (T), got ${n}`);
    if (n !== T) full = false;
  });
  return full ? null : lengths;
}

/**
 * Runs `cell` over the projected inputs xp [T, B, G·H] (cell.projectInput of the whole sequence) from
 * `state`. With lengths, a step leaves the state of entries past their length unchanged and outputs 0 for
 * them: where(valid, new, old), so gradients flow only through valid steps.
 */
export function unroll(cell: RecurrentCell, xp: Tensor, state: CellState, opts: UnrollOptions = {}): UnrollResult {
  if (xp.rank !== 3) throw new ShapeError(`unroll: 'xp' must be [T, B, G·H], got ${fmtShape(xp.shape)}`);
  const [T, B, GH] = xp.shape;
  const lengths = checkLengths('unroll', opts.lengths, T, B);
  const outputs = new Array<Tensor>(T);
  let s = state;
  for (let k = 0; k < T; k++) {
    const t = opts.reverse ? T - 1 - k : k;
    const xt = reshape(slice(xp, [t, 0, 0], [t + 1, B, GH]), [B, GH]);
    const next = cell.step(xt, s);
    const valid = lengths ? validMask(lengths, t, xp) : null;
    if (valid) {
      // Entries past their length keep their state and output zeros.
      const prev = s;
      s = { h: where(valid, next.h, prev.h) };
      if (next.c && prev.c) s.c = where(valid, next.c, prev.c);
      outputs[t] = where(valid, next.h, 0);
    } else {
      s = next;
      outputs[t] = next.h;
    }
  }
  return { output: concat(outputs.map((o) => unsqueeze(o, 0)), 0), state: s };
}

/** [B, 1] of 1 where step t is within an entry's length, 0 past it; null when every entry is valid. */
function validMask(lengths: readonly number[], t: number, like: Tensor): Tensor | null {
  let all = true;
  const m = lengths.map((n) => {
    if (t >= n) all = false;
    return t < n ? 1 : 0;
  });
  return all ? null : tensor(m, [lengths.length, 1], { dtype: like.dtype, backend: like.backend });
}
