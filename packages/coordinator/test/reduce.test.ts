// The all-reduce's arithmetic on its own: skipping the chunks that are zero in every worker changes no bit.
import { describe, expect, it } from 'vitest';
import { CHUNK, chunkRanges, markNonzeroChunks, reduceActiveShare, reduceSlice, unionNonzero, zeroChunks } from '../src/reduce.js';
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

describe('reduceActiveShare: the active chunks, shared evenly', () => {
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
          shares.push(reduceActiveShare(sparse, active, r, N, sliceOf(r, N, L), scale, sumsSparse, L));
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

describe('zeroChunks and chunkRanges', () => {
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

  it('chunkRanges merges adjacent chunks and ends at the layout', () => {
    expect(chunkRanges([0, 1, 3, 6, 7], L)).toEqual([0, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK, 6 * CHUNK, L]);
    expect(chunkRanges([6, 7], L)).toEqual([6 * CHUNK, L]);
    expect(chunkRanges([], L)).toEqual([]);
  });
});
