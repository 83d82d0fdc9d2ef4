/*
 * The deterministic all-reduce arithmetic, one slice at a time (see shared-memory.ts for the layout).
 *
 * Worker r sums slice r of every worker's gradient into grads[0], adding the workers in rank order
 * 0, 1, ..., N-1, one float32 addition at a time (each partial sum rounded to float32, exactly what the
 * backend's in-place gradient accumulation does). So the result never depends on timing,
 * and N workers with one micro-batch each give bit for bit the gradient of one worker that accumulates N
 * micro-batches in the same order.
 */

/** Floats per chunk: the unit of slicing and of the partial sums of squares. A multiple of 16 (a cache line). */
export const CHUNK = 4096;

export interface SliceBounds {
  /** Floats [lo, hi) of the flat layout. */
  lo: number;
  hi: number;
  /** Chunks [chunkLo, chunkHi). */
  chunkLo: number;
  chunkHi: number;
}

/**
 * grads[0][i] = (((g0[i] + g1[i]) + g2[i]) + ... + g_{N-1}[i]) · scale for i in the slice, then
 * chunkSums[c] = Σ grads[0][i]² (float64) over each chunk c of the slice. One pass per chunk: Math.fround
 * after every addition and after the multiplication is exactly what storing each partial result in a
 * Float32Array would give (float32 arithmetic), without the stores. With one worker and scale 1 (no
 * accumulation) only the sums of squares are taken: averaging does nothing.
 */
export function reduceSlice(grads: readonly Float32Array[], slice: SliceBounds, scale: number, chunkSums: Float64Array, length: number): void {
  const dst = grads[0];
  const N = grads.length;
  const src = grads[1];
  for (let c = slice.chunkLo; c < slice.chunkHi; c++) {
    const a = c * CHUNK;
    const b = Math.min(a + CHUNK, length);
    let ss = 0;
    if (N === 1 && scale === 1) {
      for (let i = a; i < b; i++) {
        const v = dst[i];
        ss += v * v;
      }
    } else if (N === 1) {
      for (let i = a; i < b; i++) {
        const v = Math.fround(dst[i] * scale);
        dst[i] = v;
        ss += v * v;
      }
    } else if (N === 2) {
      // The common case, without the inner loop over workers.
      for (let i = a; i < b; i++) {
        const v = Math.fround(Math.fround(dst[i] + src[i]) * scale);
        dst[i] = v;
        ss += v * v;
      }
    } else {
      for (let i = a; i < b; i++) {
        let acc = dst[i];
        for (let w = 1; w < N; w++) acc = Math.fround(acc + grads[w][i]);
        const v = Math.fround(acc * scale);
        dst[i] = v;
        ss += v * v;
      }
    }
    chunkSums[c] = ss;
  }
}

/** √(Σ chunkSums[c]) summed in chunk order: the same on every worker and for any number of workers. */
export function globalNorm(chunkSums: Float64Array): number {
  let s = 0;
  for (let c = 0; c < chunkSums.length; c++) s += chunkSums[c];
  return Math.sqrt(s);
}
