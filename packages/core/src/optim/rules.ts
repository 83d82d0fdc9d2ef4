/*
 * Update rules: each optimizer's arithmetic as one function over a range [lo, hi) of flat Float32Arrays.
 * The per-parameter optimizers call it once per parameter over [0, size); the data-parallel coordinator
 * calls it on each worker's slice of the flat (shared) parameter buffer. Same code, so a sharded update
 * is bit-for-bit the whole-buffer update.
 *
 * Semantics are PyTorch 1.13's (torch/optim/{sgd,adam,adamw,adagrad}.py, single-tensor path). Temporaries
 * are float64 (JavaScript numbers) and stored as float32; torch computes in float32, and the two agree to
 * about 1e-7 relative per step (pinned against torch by test/optim.test.ts).
 */
import type { AdagradOptions, AdamOptions, OptimizerKind, SGDOptions } from './options.js';

export interface UpdateRule<H> {
  readonly kind: OptimizerKind;
  /** Names of the per-element state arrays, e.g. ['momentumBuffer'] or ['expAvg', 'expAvgSq']. */
  readonly stateNames: readonly string[];
  /** What each state array holds before the first step (same order as stateNames). */
  readonly initialValues: readonly number[];
  /**
   * True when an element whose gradient is zero keeps its value and state bit for bit (for a finite lr and
   * gradScale): the update may then skip ranges whose gradient is all zero (the coordinator skips the
   * embedding rows no token of a step used). Plain SGD and Adagrad (ε > 0) without weight decay; not Adam,
   * whose moments decay on every step, nor momentum, which keeps moving.
   */
  readonly zeroGradientIsNoop: boolean;
  /**
   * Updates values[lo, hi) in place from grads[lo, hi); state arrays are indexed the same way.
   * `step` counts from 1 (the step being taken). `lr` is the current learning rate (schedules change it,
   * so it is an argument rather than part of `hyper`). Every gradient is read multiplied by `gradScale`:
   * gradient clipping folded into the update, which saves the data-parallel workers a pass over their slice.
   */
  update(values: Float32Array, grads: Float32Array, state: readonly Float32Array[], lo: number, hi: number, hyper: H, step: number, lr: number, gradScale: number): void;
}

/**
 * SGD: d = g + wd·p; with momentum, buf = d on the first step (torch clones the gradient, it does not
 * start from zero), then buf = μ·buf + (1 − dampening)·d; the step direction is buf, or d + μ·buf with
 * Nesterov. p −= lr·direction.
 */
export function sgdRule(hyper: SGDOptions): UpdateRule<SGDOptions> {
  return {
    kind: 'sgd',
    stateNames: hyper.momentum !== 0 ? ['momentumBuffer'] : [],
    initialValues: hyper.momentum !== 0 ? [0] : [],
    // p −= lr·gs·0 leaves p as it is (−0 included: −0 − +0 is −0).
    zeroGradientIsNoop: hyper.momentum === 0 && hyper.weightDecay === 0,
    update(values, grads, state, lo, hi, h, step, lr, gs) {
      const wd = h.weightDecay;
      const mu = h.momentum;
      if (mu === 0) {
        // Plain SGD, a language model's whole update: unrolled by four (V8 does not unroll), which ran ~35%
        // faster over W1's 4.6M parameters; without weight decay d is g itself, as torch skips the add.
        let i = lo;
        if (wd === 0) {
          const k = lr * gs;
          for (; i + 3 < hi; i += 4) {
            values[i] -= k * grads[i]; values[i + 1] -= k * grads[i + 1];
            values[i + 2] -= k * grads[i + 2]; values[i + 3] -= k * grads[i + 3];
          }
          for (; i < hi; i++) values[i] -= k * grads[i];
          return;
        }
        for (; i < hi; i++) {
          const p = values[i];
          values[i] = p - lr * (grads[i] * gs + wd * p);
        }
        return;
      }
      const buf = state[0];
      const keep = 1 - h.dampening;
      // Loops specialised per case: a branch inside the loop costs about 3× here (V8 does not unswitch it).
      if (step === 1) {
        const scale = h.nesterov ? 1 + mu : 1; // buf = d, so Nesterov's d + μ·buf is (1 + μ)·d
        for (let i = lo; i < hi; i++) {
          const p = values[i];
          const d = grads[i] * gs + wd * p;
          buf[i] = d;
          values[i] = p - lr * scale * d;
        }
      } else if (h.nesterov) {
        for (let i = lo; i < hi; i++) {
          const p = values[i];
          const d = grads[i] * gs + wd * p;
          const b = mu * buf[i] + keep * d;
          buf[i] = b;
          values[i] = p - lr * (d + mu * b);
        }
      } else {
        for (let i = lo; i < hi; i++) {
          const p = values[i];
          const d = grads[i] * gs + wd * p;
          const b = mu * buf[i] + keep * d;
          buf[i] = b;
          values[i] = p - lr * b;
        }
      }
    },
  };
}

/**
 * Adam (L2 penalty added to the gradient) and AdamW (decoupled decay, p ·= 1 − lr·wd, before the
 * moment update). m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; with amsgrad, vmax = max(vmax, v) is
 * used in place of v. p −= lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε): ε is added after the bias
 * correction of √v, as torch does.
 */
export function adamRule(hyper: AdamOptions, decoupled = false): UpdateRule<AdamOptions> {
  const stateNames = hyper.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'];
  return {
    kind: decoupled ? 'adamw' : 'adam',
    stateNames,
    initialValues: stateNames.map(() => 0),
    zeroGradientIsNoop: false,
    update(values, grads, state, lo, hi, h, step, lr, gs) {
      const [b1, b2] = h.betas;
      const eps = h.eps;
      const l2 = decoupled ? 0 : h.weightDecay;
      const shrink = decoupled ? 1 - lr * h.weightDecay : 1;
      const stepSize = lr / (1 - b1 ** step);
      const bc2Sqrt = Math.sqrt(1 - b2 ** step);
      const m = state[0];
      const v = state[1];
      if (!h.amsgrad) {
        for (let i = lo; i < hi; i++) {
          const p = values[i] * shrink;
          const g = grads[i] * gs + l2 * p;
          const mi = b1 * m[i] + (1 - b1) * g;
          const vi = b2 * v[i] + (1 - b2) * g * g;
          m[i] = mi;
          v[i] = vi;
          values[i] = p - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
        }
        return;
      }
      const vmax = state[2];
      for (let i = lo; i < hi; i++) {
        const p = values[i] * shrink;
        const g = grads[i] * gs + l2 * p;
        const mi = b1 * m[i] + (1 - b1) * g;
        const vi = b2 * v[i] + (1 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        const vm = Math.max(vmax[i], vi);
        vmax[i] = vm;
        values[i] = p - (stepSize * mi) / (Math.sqrt(vm) / bc2Sqrt + eps);
      }
    },
  };
}

export function adamwRule(hyper: AdamOptions): UpdateRule<AdamOptions> {
  return adamRule(hyper, true);
}

/**
 * Adagrad: g += wd·p; sum += g²; p −= clr · g / (√sum + ε) with clr = lr / (1 + (t − 1)·lrDecay).
 * The sum starts at initialAccumulatorValue.
 */
export function adagradRule(hyper: AdagradOptions): UpdateRule<AdagradOptions> {
  return {
    kind: 'adagrad',
    stateNames: ['sum'],
    initialValues: [hyper.initialAccumulatorValue],
    // sum += 0 and p −= clr·0/(√sum + ε); with ε = 0 an untouched sum of 0 gives 0/0 = NaN instead.
    zeroGradientIsNoop: hyper.weightDecay === 0 && hyper.eps > 0,
    update(values, grads, state, lo, hi, h, step, lr, gs) {
      const wd = h.weightDecay;
      const eps = h.eps;
      const clr = lr / (1 + (step - 1) * h.lrDecay);
      const sum = state[0];
      for (let i = lo; i < hi; i++) {
        const p = values[i];
        const g = grads[i] * gs + wd * p;
        const s = sum[i] + g * g;
        sum[i] = s;
        values[i] = p - (clr * g) / (Math.sqrt(s) + eps);
      }
    },
  };
}
