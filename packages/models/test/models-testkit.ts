// Shared by the model tests: a float64 numerical gradient check over a module's parameters, a tiny
// training loop, seeded synthetic data, and the comparison with PyTorch's fixtures.
import { expect } from 'vitest';
import { Adam, Generator, noGrad, tensor, type Module, type Tensor } from '@loom/core';

export interface ModuleGradcheckOptions {
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Check at most this many elements per parameter (chosen by a seeded generator); default: all. */
  maxPerParameter?: number;
  /** Generators whose state is restored before every evaluation, so dropout draws the same masks. */
  generators?: Generator[];
}

/**
 * Checks d loss / d parameter for every parameter of `module` (float64) against central differences of
 * `loss()`, a scalar. Returns how many elements were checked; throws naming the parameter and element at
 * the first mismatch.
 */
export function gradcheckModule(module: Module, loss: () => Tensor, opts: ModuleGradcheckOptions = {}): number {
  const eps = opts.eps ?? 1e-6, rtol = opts.rtol ?? 1e-5, atol = opts.atol ?? 1e-8;
  const saved = (opts.generators ?? []).map((g) => g.getState());
  const reset = (): void => (opts.generators ?? []).forEach((g, i) => g.setState(saved[i]));
  const params = module.namedParameters();
  for (const [name, p] of params) {
    if (p.dtype !== 'float64') throw new Error(`gradcheckModule: parameter '${name}' is ${p.dtype}; build the model with dtype 'float64'`);
  }
  module.zeroGrad();
  reset();
  const out = loss();
  if (out.size !== 1) throw new Error(`gradcheckModule: loss() must return a scalar, got ${out.size} elements`);
  out.backward();
  const pick = new Generator(99);
  let checked = 0;
  for (const [name, p] of params) {
    if (!p.grad) throw new Error(`gradcheckModule: parameter '${name}' received no gradient`);
    const analytic = p.grad.toArray();
    const values = p.data;
    const all = Array.from({ length: p.size }, (_, i) => i);
    const idx = opts.maxPerParameter && p.size > opts.maxPerParameter
      ? all.sort(() => pick.random() - 0.5).slice(0, opts.maxPerParameter)
      : all;
    for (const i of idx) {
      const v = values[i];
      values[i] = v + eps;
      reset();
      const fPlus = noGrad(() => loss().item());
      values[i] = v - eps;
      reset();
      const fMinus = noGrad(() => loss().item());
      values[i] = v;
      const numeric = (fPlus - fMinus) / (2 * eps);
      const err = Math.abs(analytic[i] - numeric);
      if (!(err <= atol + rtol * Math.abs(numeric))) {
        throw new Error(`gradcheckModule: '${name}' [${p.shape.join(', ')}] element ${i}: analytic ${analytic[i]}, numeric ${numeric} (error ${err.toExponential(2)})`);
      }
      checked++;
    }
  }
  return checked;
}

/** Adam steps on `loss()`; returns the last loss. */
export function train(module: Module, steps: number, lr: number, loss: (step: number) => Tensor): number {
  const opt = new Adam(module, { lr });
  let last = NaN;
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const l = loss(s);
    l.backward();
    opt.step();
    last = l.item();
  }
  return last;
}

/** int32 [T, B] from row-major values. */
export function ids(values: ArrayLike<number>, T: number, B: number): Tensor {
  return tensor(Int32Array.from(values), [T, B], { dtype: 'int32' });
}

/** Seeded random integers in [0, n). */
export function randomInts(g: Generator, count: number, n: number): number[] {
  return Array.from({ length: count }, () => g.int(n));
}

/** Every element within `tol` (absolute) of PyTorch's; a failure names the worst element. */
export function expectClose(actual: ArrayLike<number>, expected: readonly number[], tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0, at = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= worst)) { worst = err; at = i; }
  }
  if (!(worst <= tol)) expect.fail(`${what}: element ${at}: got ${actual[at]}, PyTorch ${expected[at]} (error ${worst.toExponential(2)} > ${tol})`);
}
