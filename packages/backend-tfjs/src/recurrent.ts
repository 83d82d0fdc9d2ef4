/*
 * The fused recurrent primitive (@loom/core's recurrentSequence) on TF.js ops: one layer-direction of an
 * Elman RNN, LSTM or GRU over T steps, forward and whole-sequence backward (BPTT), with PyTorch's
 * equations as core's fused/recurrent-kernel.ts:
 *
 *   pre-activations  xg = xp[t] + b_ih,  hg = h·W_hhᵀ + b_hh      gate blocks: LSTM i, f, g, o; GRU r, z, n
 *   LSTM             c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c')        (a = xg + hg)
 *   GRU              r = σ(xg_r + hg_r), z = σ(xg_z + hg_z), n = tanh(xg_n + r ⊙ hg_n);  h' = n + z ⊙ (h - n)
 *   RNN              h' = tanh(xg + hg) or relu(xg + hg)
 *
 * Past an entry's length (spec.lengths) its state is kept and its output is 0 (a 0/1 mask m per step:
 * state ← state + m ⊙ (new - state), output = m ⊙ h'); `reverse` runs t = T-1 → 0.
 * Output: y [T + S, B, H]: the outputs in time order, then h_T (and c_T for LSTM).
 *
 * The backward is written out (TF.js's own tf.grads needs the gradient registry of the @tensorflow/tfjs
 * bundle, which tfjs-core alone does not load): one loop back over the steps with the saved gates, then
 * one product for dW_hh over all steps. Everything stays on the TF.js side (on the GPU with tfjs-node-gpu).
 * Checked against the host kernels through the models' tests in test/recurrent.test.ts.
 */
import type { Backend } from '@loom/core';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { Tf } from './runtime.js';

export type RecurrentSpec = Parameters<Backend['recurrentForward']>[0];

export interface RecurrentInputs {
  xp: Tensor; // [T, B, G·H]
  wHh: Tensor; // [G·H, H]
  bIh: Tensor | null; // [G·H]
  bHh: Tensor | null; // [G·H]
  h0: Tensor; // [B, H]
  c0: Tensor | null; // [B, H], LSTM
}

/** What one step keeps for the backward: the state it started from and its activated gates. */
export interface StepSaved {
  h: Tensor; // [B, H], the state before the step
  c: Tensor | null; // LSTM: the cell state before the step
  gates: Tensor[]; // LSTM i, f, g, o, tanh(c'); GRU r, z, n, hg_n; RNN h'
}

export interface RecurrentGradientsTf {
  dxp: Tensor;
  dwHh: Tensor;
  dbIh: Tensor | null;
  dbHh: Tensor | null;
  dh0: Tensor;
  dc0: Tensor | null;
}

/** The 0/1 mask of step t, [B, 1], or null when every entry runs all T steps. */
function maskAt(tf: Tf, spec: RecurrentSpec, t: number): Tensor | null {
  if (!spec.lengths) return null;
  return tf.tensor2d(Float32Array.from(spec.lengths, (L) => (t < L ? 1 : 0)), [spec.batch, 1]);
}

/** y [T + S, B, H], and each step's StepSaved in time order when `save` (call inside a tidy). */
export function recurrentForwardTf(tf: Tf, spec: RecurrentSpec, x: RecurrentInputs, save: boolean): { y: Tensor; saved: StepSaved[] } {
  const { kind, steps: T, batch: B, hidden: H, reverse } = spec;
  const xs = tf.unstack(x.xp); // T × [B, G·H]
  let h = x.h0, c = x.c0;
  const outs: Tensor[] = new Array(T);
  const saved: StepSaved[] = save ? new Array(T) : [];
  for (let s = 0; s < T; s++) {
    const t = reverse ? T - 1 - s : s;
    const xg = x.bIh ? tf.add(xs[t], x.bIh) : xs[t];
    let hg = tf.matMul(h, x.wHh, false, true); // [B, G·H]
    if (x.bHh) hg = tf.add(hg, x.bHh);
    let hNew: Tensor, cNew: Tensor | null = null, gates: Tensor[];
    if (kind === 'lstm') {
      const [ai, af, ag, ao] = tf.split(tf.add(xg, hg), 4, 1); // 4 × [B, H]
      const i = tf.sigmoid(ai), f = tf.sigmoid(af), g = tf.tanh(ag), o = tf.sigmoid(ao);
      cNew = tf.add(tf.mul(f, c!), tf.mul(i, g));
      const tc = tf.tanh(cNew);
      hNew = tf.mul(o, tc);
      gates = [i, f, g, o, tc];
    } else if (kind === 'gru') {
      const [xr, xz, xn] = tf.split(xg, 3, 1);
      const [hr, hz, hn] = tf.split(hg, 3, 1);
      const r = tf.sigmoid(tf.add(xr, hr)), z = tf.sigmoid(tf.add(xz, hz));
      const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
      hNew = tf.add(n, tf.mul(z, tf.sub(h, n)));
      gates = [r, z, n, hn];
    } else {
      const a = tf.add(xg, hg);
      hNew = kind === 'rnn_relu' ? tf.relu(a) : tf.tanh(a);
      gates = [hNew];
    }
    if (save) saved[t] = { h, c, gates };
    const m = maskAt(tf, spec, t);
    if (m) {
      outs[t] = tf.mul(hNew, m);
      h = tf.add(h, tf.mul(m, tf.sub(hNew, h)));
      if (cNew) c = tf.add(c!, tf.mul(m, tf.sub(cNew, c!)));
    } else {
      outs[t] = hNew;
      h = hNew;
      if (cNew) c = cNew;
    }
  }
  const parts = [tf.stack(outs), tf.reshape(h, [1, B, H])];
  if (kind === 'lstm') parts.push(tf.reshape(c!, [1, B, H]));
  return { y: tf.concat(parts, 0), saved }; // y [T + S, B, H]
}

/** The gradients of every input from dy [T + S, B, H], given W_hh, which biases exist and the forward's saved steps (call inside a tidy). */
export function recurrentBackwardTf(tf: Tf, spec: RecurrentSpec, x: { wHh: Tensor; bIh: boolean; bHh: boolean }, saved: readonly StepSaved[], dy: Tensor): RecurrentGradientsTf {
  const { kind, steps: T, reverse } = spec;
  const dys = tf.unstack(dy); // T + S × [B, H]
  let dh = dys[T]; // ∂/∂(state after the last step)
  let dc = kind === 'lstm' ? dys[T + 1] : null;
  const dxg: Tensor[] = new Array(T), dhg: Tensor[] = new Array(T), hPrev: Tensor[] = new Array(T);
  for (let s = T - 1; s >= 0; s--) {
    const t = reverse ? T - 1 - s : s;
    const { h, gates } = saved[t];
    const m = maskAt(tf, spec, t);
    // Through the mask: the new state gets m of dh (and all of the output's gradient, masked), the old
    // state keeps 1 - m of it.
    let dhNew = tf.add(dys[t], dh), dhOld: Tensor | null = null;
    let dcNew = dc, dcOld: Tensor | null = null;
    if (m) {
      const keep = tf.sub(1, m);
      dhNew = tf.mul(dhNew, m);
      dhOld = tf.mul(dh, keep);
      if (dc) {
        dcNew = tf.mul(dc, m);
        dcOld = tf.mul(dc, keep);
      }
    }
    let dPrev: Tensor | null = null; // the gradient reaching h past W_hh (GRU's z ⊙ h term)
    if (kind === 'lstm') {
      const [i, f, g, o, tc] = gates;
      const dcp = tf.add(dcNew!, tf.mul(tf.mul(dhNew, o), tf.sub(1, tf.square(tc)))); // ∂c'
      const dai = tf.mul(tf.mul(dcp, g), tf.mul(i, tf.sub(1, i)));
      const daf = tf.mul(tf.mul(dcp, saved[t].c!), tf.mul(f, tf.sub(1, f)));
      const dag = tf.mul(tf.mul(dcp, i), tf.sub(1, tf.square(g)));
      const dao = tf.mul(tf.mul(dhNew, tc), tf.mul(o, tf.sub(1, o)));
      dxg[t] = dhg[t] = tf.concat([dai, daf, dag, dao], 1); // [B, 4H]
      const dcPrev = tf.mul(dcp, f);
      dc = dcOld ? tf.add(dcPrev, dcOld) : dcPrev;
    } else if (kind === 'gru') {
      const [r, z, n, hn] = gates;
      const dan = tf.mul(tf.mul(dhNew, tf.sub(1, z)), tf.sub(1, tf.square(n))); // ∂ of n's pre-activation
      const dar = tf.mul(tf.mul(dan, hn), tf.mul(r, tf.sub(1, r)));
      const daz = tf.mul(tf.mul(dhNew, tf.sub(h, n)), tf.mul(z, tf.sub(1, z)));
      dxg[t] = tf.concat([dar, daz, dan], 1); // [B, 3H]
      dhg[t] = tf.concat([dar, daz, tf.mul(dan, r)], 1);
      dPrev = tf.mul(dhNew, z);
    } else {
      const [hNew] = gates;
      const da = kind === 'rnn_relu'
        ? tf.mul(dhNew, tf.cast(tf.greater(hNew, 0), 'float32'))
        : tf.mul(dhNew, tf.sub(1, tf.square(hNew)));
      dxg[t] = dhg[t] = da;
    }
    hPrev[t] = h;
    dh = tf.matMul(dhg[t], x.wHh); // [B, G·H]·[G·H, H]
    if (dPrev) dh = tf.add(dh, dPrev);
    if (dhOld) dh = tf.add(dh, dhOld);
  }
  const dxp = tf.stack(dxg); // [T, B, G·H]
  const DH = tf.concat(dhg, 0); // [T·B, G·H]
  return {
    dxp,
    dwHh: tf.matMul(DH, tf.concat(hPrev, 0), true, false), // Σ_t dhg_tᵀ · h_{t-1}: [G·H, H]
    dbIh: x.bIh ? tf.sum(dxp, [0, 1]) : null,
    dbHh: x.bHh ? tf.sum(DH, 0) : null,
    dh0: dh,
    dc0: dc,
  };
}
