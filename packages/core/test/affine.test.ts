// affine(x, w, b) = x·wᵀ + b, the primitive behind linear(x, w, b): its gradients (float64 checks), and its
// values, which must be bitwise those of matmul then add on every backend (the fused epilogue adds the bias
// after the product), including products deeper than one packed block (k > 256) and edge tiles.
import { describe, expect, it } from 'vitest';
import { add, affine, backend, linear, matmul, mul, sum, ShapeError, type Tensor } from '../src/index.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn } from './helpers/random.js';

const R = { requiresGrad: true } as const;

describe('affine: gradients (float64, reference backend)', () => {
  it.each([
    ['2-D x', [3, 4]],
    ['3-D x (rows folded)', [2, 3, 4]],
  ])('%s', (_name, xShape) => {
    gradcheck((x, w, b) => affine(x, w, b), [randn(xShape, 1, R), randn([5, 4], 2, R), randn([5], 3, R)]);
  });

  it('each input alone requires grad', () => {
    gradcheck((x) => affine(x, randn([5, 4], 2), randn([5], 3)), [randn([3, 4], 1, R)]);
    gradcheck((w) => affine(randn([3, 4], 1), w, randn([5], 3)), [randn([5, 4], 2, R)]);
    gradcheck((b) => affine(randn([3, 4], 1), randn([5, 4], 2), b), [randn([5], 3, R)]);
  });

  it('linear(x, w, b) records affine; without a bias it stays a matmul', () => {
    const y = linear(randn([3, 4], 1, R), randn([5, 4], 2, R), randn([5], 3, R));
    expect(y.node?.op).toBe('affine');
    expect(linear(randn([3, 4], 1, R), randn([5, 4], 2, R)).node?.op).toBe('matmul');
  });
});

describe.each(['reference', 'wasm'])('affine equals matmul then add, bit for bit (%s backend, float32)', (backendName) => {
  const shapes: [string, number, number, number][] = [
    ['full tiles', 12, 24, 16],
    ['edge tiles in m and n', 7, 13, 5],
    ['deeper than one packed block (k = 300)', 9, 26, 300],
    ['many columns, an LM output layer in small', 35, 1001, 200],
    ['k = 0: the bias alone', 3, 5, 0],
  ];
  it.each(shapes)('%s: m=%i n=%i k=%i', (_name, m, n, k) => {
    const opts = { dtype: 'float32' as const, backend: backendName, requiresGrad: true };
    const x = randn([m, k], 11, opts), w = randn([n, k], 12, opts), b = randn([n], 13, opts);
    const weights = randn([m, n], 14, { dtype: 'float32', backend: backendName });
    const fused = affine(x, w, b), composed = add(matmul(x, w, false, true), b);
    expect(Array.from(fused.data)).toEqual(Array.from(composed.data));

    // The gradients too: the same products and the same row sum as matmul's and add's backward.
    const grads = (y: Tensor): number[][] => {
      for (const t of [x, w, b]) t.grad = null;
      sum(mul(y, weights)).backward();
      return [x, w, b].map((t) => Array.from(t.grad!.data));
    };
    expect(grads(affine(x, w, b))).toEqual(grads(add(matmul(x, w, false, true), b)));
  });
});

describe('affine: bad input names the argument and the shapes', () => {
  const be = backend('reference');
  const t = (shape: number[]): Tensor => randn(shape, 1, { backend: be });
  it.each([
    ['x of rank 1', () => affine(t([4]), t([5, 4]), t([5])), /'x' needs at least 2 dimensions/],
    ['weight of rank 3', () => affine(t([3, 4]), t([1, 5, 4]), t([5])), /'weight' must be 2-D/],
    ['features differ', () => affine(t([3, 4]), t([5, 3]), t([5])), /'x' \[3, 4\] has 4 features, 'weight' \[5, 3\] expects 3/],
    ['bias of the wrong length', () => affine(t([3, 4]), t([5, 4]), t([4])), /'bias' must be \[5\]/],
  ])('%s', (_name, call, message) => {
    expect(call).toThrow(ShapeError);
    expect(call).toThrow(message);
  });
});
