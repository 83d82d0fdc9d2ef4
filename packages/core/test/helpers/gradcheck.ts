// Numerical gradient checking: analytic gradients from backward() against central finite differences.
import { Generator, fromStorage, noGrad, type Tensor } from '../../src/index.js';
import { fmtShape } from '../../src/errors.js';

export interface GradcheckOptions {
  /** Finite-difference step. */
  eps?: number;
  /** Allowed error: |analytic - numeric| <= atol + rtol·|numeric|. */
  rtol?: number;
  atol?: number;
  /** Seed of the random weights that turn a non-scalar output into a scalar (so every output element counts). */
  seed?: number;
}

/**
 * Checks the gradient of `fn` with respect to every input that requires grad. The inputs must be float64
 * tensors on a host backend (their values are perturbed in place and restored). The scalar differentiated
 * is sum(fn(...inputs) · w) with fixed random weights w, so a wrong gradient for any output element shows.
 * Throws an Error naming the input, the element and both values at the first mismatch.
 */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6, rtol = opts.rtol ?? 1e-6, atol = opts.atol ?? 1e-7;
  const checked = inputs.filter((t) => t.requiresGrad);
  if (checked.length === 0) throw new Error('gradcheck: no input requires grad');
  for (const t of checked) {
    if (t.dtype !== 'float64') throw new Error(`gradcheck: inputs must be float64, got ${t.dtype}`);
    t.grad = null;
  }

  const out = fn(...inputs);
  if (!out.requiresGrad) throw new Error('gradcheck: the output does not require grad');
  const g = new Generator(opts.seed ?? 12345);
  const w = Float64Array.from({ length: out.size }, () => g.uniform(0.5, 1.5) * (g.random() < 0.5 ? -1 : 1));
  const weighted = (y: Tensor): number => {
    const d = y.data;
    if (d.length !== w.length) throw new Error(`gradcheck: output size changed from ${w.length} to ${d.length}`);
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i] * w[i];
    return s;
  };
  out.backward(fromStorage(out.backend.fromArray(out.dtype, w), out.shape, out.dtype, out.backend));

  for (const [k, t] of inputs.entries()) {
    if (!t.requiresGrad) continue;
    if (!t.grad) throw new Error(`gradcheck: input ${k} ${fmtShape(t.shape)} received no gradient`);
    if (t.grad.size !== t.size || t.grad.shape.join() !== t.shape.join()) {
      throw new Error(`gradcheck: input ${k}: gradient shape ${fmtShape(t.grad.shape)} differs from input shape ${fmtShape(t.shape)}`);
    }
    const analytic = t.grad.toArray();
    const values = t.data;
    for (let i = 0; i < t.size; i++) {
      const v = values[i];
      values[i] = v + eps;
      const fPlus = noGrad(() => weighted(fn(...inputs)));
      values[i] = v - eps;
      const fMinus = noGrad(() => weighted(fn(...inputs)));
      values[i] = v;
      const numeric = (fPlus - fMinus) / (2 * eps);
      const err = Math.abs(analytic[i] - numeric);
      if (!(err <= atol + rtol * Math.abs(numeric))) {
        throw new Error(`gradcheck: input ${k} ${fmtShape(t.shape)}, element ${i}: analytic ${analytic[i]}, numeric ${numeric} (error ${err.toExponential(2)})`);
      }
    }
  }
}
