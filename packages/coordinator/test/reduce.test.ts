// The all-reduce's arithmetic on its own: skipping the chunks that are zero in every worker changes no bit.
import { describe, expect, it } from 'vitest';
import { CHUNK, activeRanges, activeShare, markNonzeroChunks, reduceSlice, unionNonzero, zeroChunks, type SliceBounds } from '../src/reduce.js';
import { numChunks, sliceOf } from '../src/shared-memory.js';

const L = 7 * CHUNK + 123; // a partial last chunk
const C = numChunks(L);
const bitsOf = (x: Float32Array): Int32Array => new Int32Array(x.buffer, x.byteOffset, x.length);
const bytes = (x: ArrayBufferView): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

/** Worker w's gradient: non-zero only in the chunks listed (a few values, as embedding rows would be). */
function gradient(w: number, chunks: number[]): Float32Array {
  const g = new Float32Array(L);
  for (const c of chunks) {
    const lo = c * CHUNK;
    const hi = Math.min(lo + CHUNK, L);
    for (let i = lo + ((7 * w + c) % 50); i < hi; i += 97) g[i] = Math.sin(w + i) * 1e-3;
  }
  return g;
}

describe('markNonzeroChunks', () => {
  it('marks exactly the chunks holding a word other than +0 (−0, NaN and a last element count)', () => {
    const g = new Float32Array(L);
    g[1 * CHUNK] = 1e-30; // the first element of a chunk
    g[3 * CHUNK - 1] = 5; // the last element of chunk 2
    g[4 * CHUNK + 9] = -0;
    g[5 * CHUNK + 4000] = NaN;
    g[L - 1] = 2; // the partial last chunk
    const marks = new Uint8Array(C).fill(9);
    expect(markNonzeroChunks(bitsOf(g), L, marks)).toBe(5);
    expect([...marks]).toEqual([0, 1, 1, 0, 1, 1, 0, 1]);
  });
});

describe('reduceSlice over activeShare: the active chunks, shared evenly', () => {
  for (const N of [1, 2, 3]) {
    it(`${N} worker(s): the same sums and sums of squares as reducing every chunk, bit for bit`, () => {
      const touched = [[0, 2, 7], [2, 3], [6, 0]];
      const dense = Array.from({ length: N }, (_, w) => gradient(w, touched[w]));
      const sparse = dense.map((g) => g.slice());
      const marks = sparse.map((g) => {
        const m = new Uint8Array(C);
        markNonzeroChunks(bitsOf(g), L, m);
        return m;
      });
      const active = new Uint8Array(C);
      const union = [...new Set(touched.slice(0, N).flat())].sort((a, b) => a - b);
      expect(unionNonzero(marks, 0, C, active)).toBe(union.length);
      const [sumsDense, sumsSparse] = [new Float64Array(C).fill(-1), new Float64Array(C).fill(-1)];
      for (const scale of [1, 1 / N]) {
        const shares: number[][] = [];
        for (let r = 0; r < N; r++) {
          reduceSlice(dense, sliceOf(r, N, L), scale, sumsDense, L);
          const share = activeShare(active, union.length, r, N, L);
          reduceSlice(sparse, share, scale, sumsSparse, L, active);
          shares.push(activeIn(active, share));
          expect(share.activeChunks).toBe(shares[r].length);
        }
        // The shares split the active chunks in order, their sizes at most one apart.
        expect(shares.flat()).toEqual(union);
        expect(Math.max(...shares.map((s) => s.length)) - Math.min(...shares.map((s) => s.length))).toBeLessThanOrEqual(1);
        expect(bytes(sparse[0]).equals(bytes(dense[0]))).toBe(true);
        expect([...sumsSparse]).toEqual([...sumsDense]);
        expect(sumsSparse.filter((s) => s > 0).length).toBe(union.length);
      }
    });
  }
});

/** The active chunks of a range, ascending. */
const activeIn = (active: Uint8Array, b: SliceBounds): number[] =>
  Array.from({ length: b.chunkHi - b.chunkLo }, (_, k) => b.chunkLo + k).filter((c) => active[c] !== 0);

describe('activeShare', () => {
  it('the shares tile every chunk, in rank order, also when some are empty', () => {
    for (const marked of [[0, 2, 3, 6, 7], [5], [], [0, 1, 2, 3, 4, 5, 6, 7]]) {
      const active = new Uint8Array(C);
      for (const c of marked) active[c] = 1;
      for (const N of [1, 2, 3, 4]) {
        const shares = Array.from({ length: N }, (_, r) => activeShare(active, marked.length, r, N, L));
        expect(shares[0].chunkLo).toBe(0);
        expect(shares[N - 1].chunkHi).toBe(C);
        expect(shares[N - 1].hi).toBe(L);
        for (let r = 1; r < N; r++) expect(shares[r].chunkLo).toBe(shares[r - 1].chunkHi);
        for (const b of shares) expect(b.lo).toBe(Math.min(b.chunkLo * CHUNK, L));
        expect(shares.flatMap((b) => activeIn(active, b))).toEqual(marked);
        const sizes = shares.map((b) => b.activeChunks);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe('zeroChunks and activeRanges', () => {
  it('zeroChunks clears the marked chunks only (everything with no mask)', () => {
    const g = new Float32Array(L).fill(1);
    const mask = new Uint8Array(C);
    mask[1] = mask[7] = 1;
    zeroChunks(g, mask, L);
    expect(g.subarray(CHUNK, 2 * CHUNK).every((v) => v === 0)).toBe(true);
    expect(g.subarray(7 * CHUNK).every((v) => v === 0)).toBe(true);
    expect(g.filter((v) => v === 1).length).toBe(L - CHUNK - 123);
    zeroChunks(g, null, L);
    expect(g.every((v) => v === 0)).toBe(true);
  });

  it('activeRanges merges adjacent active chunks of a range and ends at the layout', () => {
    const active = Uint8Array.from([1, 1, 0, 1, 0, 0, 1, 1]);
    expect(activeRanges(active, sliceOf(0, 1, L), L)).toEqual([0, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK, 6 * CHUNK, L]);
    // Worker 1 of 2 owns chunks 4..7.
    expect(activeRanges(active, sliceOf(1, 2, L), L)).toEqual([6 * CHUNK, L]);
    expect(activeRanges(new Uint8Array(C), sliceOf(0, 1, L), L)).toEqual([]);
  });
});
