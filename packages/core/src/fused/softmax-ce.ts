/*
 * The kernels of the softmaxCrossEntropy primitive (ops.ts): the loss of each row of logits [rows, cols]
 * against an int32 class target, and its gradient, each in one pass over the logits. The reference backend
 * runs the JavaScript loops here (float32 and float64, Math.exp); the wasm backend runs the row passes of
 * float32 in WebAssembly SIMD (softmax-ce-simd.ts) and keeps these for float64.
 *
 * Per counted row r (targets[r] !== ignoreIndex), with x the row:
 *   m = max_j x_j (0 when every x_j is -∞, so that no ∞ − ∞ appears), s = Σ_j exp(x_j − m),
 *   loss[r] = m + log s − x[targets[r]],
 *   saved[2r] = m, saved[2r + 1] = s  (float64 host arrays, private to the backend);
 * backward: dx_j = exp(x_j − m) · (g[r] / s) − g[r]·[j = targets[r]] (the softmax minus the one-hot, times
 * the row's incoming gradient). Ignored rows have loss 0 and gradient 0 and are not read at all, so a
 * masked row of -∞ logits cannot turn the loss or the gradient into NaN.
 */
import type { FloatArray } from '../dtype.js';

/** The two passes, as a backend supplies them (JavaScript below; WebAssembly SIMD on the wasm backend). */
export interface SoftmaxCEKernels {
  /** Writes losses[r] and saved[2r], saved[2r + 1] for every counted row; ignored rows get loss 0. */
  forward(x: FloatArray, targets: Int32Array, rows: number, cols: number, ignoreIndex: number | null,
    losses: FloatArray, saved: Float64Array): void;
  /** Writes dx (zero on entry, [rows, cols]) from the forward's saved values and the losses' gradient g [rows]. */
  backward(x: FloatArray, targets: Int32Array, saved: Float64Array, g: FloatArray, rows: number, cols: number,
    ignoreIndex: number | null, dx: FloatArray): void;
}

export const jsSoftmaxCE: SoftmaxCEKernels = {
  forward(x, targets, rows, cols, ignoreIndex, losses, saved) {
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === ignoreIndex) continue; // losses is zero-filled
      const o = r * cols;
      let m = -Infinity;
      for (let j = 0; j < cols; j++) if (x[o + j] > m) m = x[o + j];
      if (m === -Infinity) m = 0; // an all -∞ row gives NaN, as log-softmax does, without ∞ − ∞ here
      let s = 0;
      for (let j = 0; j < cols; j++) s += Math.exp(x[o + j] - m);
      saved[2 * r] = m;
      saved[2 * r + 1] = s;
      losses[r] = m + Math.log(s) - x[o + t];
    }
  },
  backward(x, targets, saved, g, rows, cols, ignoreIndex, dx) {
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === ignoreIndex) continue;
      const o = r * cols, m = saved[2 * r], gr = g[r], c = gr / saved[2 * r + 1];
      for (let j = 0; j < cols; j++) dx[o + j] = Math.exp(x[o + j] - m) * c;
      dx[o + t] -= gr;
    }
  },
};
