// Seeded random tensors for tests, so that every failure reproduces from its seed.
import { Generator, backend as backendNamed, fromFunction, type Backend, type DType, type Tensor } from '../../src/index.js';

export interface RandOptions {
  dtype?: DType;
  /** A backend or its registered name; the gradient checks use 'reference' in float64. */
  backend?: Backend | string;
  requiresGrad?: boolean;
}

function resolve(opts: RandOptions): { dtype: DType; backend: Backend; requiresGrad: boolean } {
  const b = opts.backend ?? 'reference';
  return { dtype: opts.dtype ?? 'float64', backend: typeof b === 'string' ? backendNamed(b) : b, requiresGrad: opts.requiresGrad ?? false };
}

/** Standard normal values (float64 on the reference backend unless told otherwise). */
export function randn(shape: readonly number[], seed: number, opts: RandOptions = {}): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => g.normal(), resolve(opts));
}

/** Uniform values in [low, high). */
export function randu(shape: readonly number[], low: number, high: number, seed: number, opts: RandOptions = {}): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => g.uniform(low, high), resolve(opts));
}

/** int32 values in [0, n). */
export function randint(shape: readonly number[], n: number, seed: number, opts: Omit<RandOptions, 'dtype' | 'requiresGrad'> = {}): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => g.int(n), { ...resolve(opts), dtype: 'int32', requiresGrad: false });
}

/** Values bounded away from zero (|v| in [0.5, 2)), for ops with a kink or a pole at 0 (abs, relu, div, log of |x|). */
export function randAway(shape: readonly number[], seed: number, opts: RandOptions = {}): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => (g.random() < 0.5 ? -1 : 1) * g.uniform(0.5, 2), resolve(opts));
}
