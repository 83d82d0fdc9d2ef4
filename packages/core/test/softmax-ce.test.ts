// The fused softmaxCrossEntropy primitive (ops.ts, fused/softmax-ce*.ts): against its composition from
// logSoftmax/gatherRows/where on every CPU backend and dtype, float64 numerical gradients, the WebAssembly
// vector exp against Math.exp, the SIMD row passes against the JavaScript ones, the composed fallback for a
// backend without the kernels, and the argument errors.
import { describe, expect, it } from 'vitest';
import {
  Generator, LoomError, ReferenceBackend, ShapeError, backend, crossEntropy, crossEntropyComposed, fromFunction,
  softmaxCrossEntropy, softmaxCrossEntropyComposed, tensor, type Backend, type DType, type Tensor,
} from '../src/index.js';
import { createSimdSoftmaxCE } from '../src/fused/softmax-ce-simd.js';
import { jsSoftmaxCE } from '../src/fused/softmax-ce.js';
import { gradcheck } from './helpers/gradcheck.js';
import { assertClose } from './helpers/naive.js';

function logits(shape: number[], seed: number, be: Backend, dtype: DType, scale = 3): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => scale * g.normal(), { backend: be, dtype, requiresGrad: true });
}

function targets(values: number[], be: Backend, shape = [values.length]): Tensor {
  return tensor(values, shape, { dtype: 'int32', backend: be });
}

function randomTargets(n: number, classes: number, seed: number, be: Backend, ignored: number[] = []): Tensor {
  const g = new Generator(seed);
  return targets(Array.from({ length: n }, (_, i) => (ignored.includes(i) ? -100 : g.int(classes))), be);
}

/** Loss and logits gradient of fn under a fixed random weighting of the output (so every element counts). */
function lossAndGrad(fn: () => Tensor, x: Tensor, seed = 7): { loss: Float64Array; grad: Float64Array } {
  x.grad = null;
  const out = fn();
  const g = new Generator(seed);
  const w = fromFunction(out.shape, () => g.uniform(0.5, 1.5), { backend: out.backend, dtype: out.dtype });
  const loss = Float64Array.from(out.data);
  out.backward(w);
  return { loss, grad: Float64Array.from(x.grad!.data) };
}

const CASES: [string, DType, number, number][] = [
  // backend, dtype, rtol, atol: float64 agrees to rounding; float32 within float32 rounding of the two orders
  ['reference', 'float64', 1e-12, 1e-14],
  ['reference', 'float32', 2e-6, 1e-7],
  ['wasm', 'float32', 2e-6, 2e-7],
];

describe.each(CASES)('softmaxCrossEntropy on %s %s against the composed version', (name, dtype, rtol, atol) => {
  const be = backend(name);
  const shapes: [string, number, number][] = [['[6, 4]', 6, 4], ['[9, 37] (a row not a multiple of 16)', 9, 37], ['[13, 5000] (several chunks)', 13, 5000]];

  it.each(shapes)('rows %s', (_label, N, C) => {
    const x = logits([N, C], N + C, be, dtype);
    const t = randomTargets(N, C, 3, be);
    const fused = lossAndGrad(() => softmaxCrossEntropy(x, t), x);
    const composed = lossAndGrad(() => softmaxCrossEntropyComposed(x, t), x);
    assertClose(fused.loss, composed.loss, rtol, atol, 'losses');
    assertClose(fused.grad, composed.grad, rtol, atol, 'gradients');
  });

  it.each([['mean'], ['sum'], ['none']] as const)('crossEntropy reduction=%s with ignored rows over [T, B, C] logits', (reduction) => {
    const x = logits([3, 4, 21], 5, be, dtype);
    const t = targets([0, -100, 20, 3, -100, 7, 7, 1, 0, 19, -100, 2], be, [3, 4]);
    const fused = lossAndGrad(() => crossEntropy(x, t, { reduction, ignoreIndex: -100 }), x);
    const composed = lossAndGrad(() => crossEntropyComposed(x, t, { reduction, ignoreIndex: -100 }), x);
    assertClose(fused.loss, composed.loss, rtol, atol, 'loss');
    assertClose(fused.grad, composed.grad, rtol, atol, 'gradient');
    // ignored rows get no gradient at all
    const g = fused.grad;
    for (const row of [1, 4, 10]) expect(Array.from(g.subarray(row * 21, (row + 1) * 21)).every((v) => v === 0)).toBe(true);
  });

  it('large logits stay finite (max-shifted), masked -Infinity logits get exactly zero gradient', () => {
    const vals = [1000, 1001, 999, -Infinity, -Infinity, 5, -3, 0, -1e4, 2e3, 1999, -Infinity];
    const x = tensor(vals, [3, 4], { backend: be, dtype, requiresGrad: true });
    const t = targets([1, 2, 0], be);
    const fused = lossAndGrad(() => softmaxCrossEntropy(x, t), x);
    const composed = lossAndGrad(() => softmaxCrossEntropyComposed(x, t), x);
    expect(Array.from(fused.loss).every(Number.isFinite)).toBe(true);
    assertClose(fused.loss, composed.loss, rtol, atol, 'losses');
    assertClose(fused.grad, composed.grad, rtol, atol, 'gradients');
    expect([fused.grad[3], fused.grad[4], fused.grad[11]]).toEqual([0, 0, 0]);
  });

  it('NaN logits, an all -Infinity row and a -Infinity target give NaN or Infinity as the composed version', () => {
    const x = tensor([0, Number.NaN, 1, 2, -Infinity, -Infinity, -Infinity, -Infinity, 0, 1, -Infinity, 2], [3, 4], { backend: be, dtype });
    const t = targets([0, 1, 2], be);
    const fused = Array.from(softmaxCrossEntropy(x, t).data);
    expect(fused).toEqual(Array.from(softmaxCrossEntropyComposed(x, t).data));
    expect(fused).toEqual([Number.NaN, Number.NaN, Infinity]);
  });

  it('an ignored row is not read: -Infinity or NaN there changes nothing', () => {
    const x = tensor([-Infinity, -Infinity, -Infinity, Number.NaN, 0.5, 1, 2, 3], [2, 4], { backend: be, dtype, requiresGrad: true });
    const loss = crossEntropy(x, targets([-100, 2], be), { ignoreIndex: -100 });
    expect(loss.item()).toBeCloseTo(-Math.log(Math.exp(2) / (Math.exp(0.5) + Math.exp(1) + Math.exp(2) + Math.exp(3))), dtype === 'float64' ? 12 : 5);
    loss.backward();
    expect(Array.from(x.grad!.data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(x.grad!.data).every(Number.isFinite)).toBe(true);
  });
});

describe('softmaxCrossEntropy gradients (float64, central differences)', () => {
  const ref = backend('reference');
  it('every row counted', () => {
    gradcheck((x) => softmaxCrossEntropy(x, targets([0, 3, 2, 1, 3], ref)), [logits([5, 4], 1, ref, 'float64', 1)]);
  });
  it('with ignored rows', () => {
    gradcheck((x) => softmaxCrossEntropy(x, targets([0, -100, 2, -100, 1], ref), -100), [logits([5, 4], 2, ref, 'float64', 1)]);
  });
  it('through crossEntropy, each reduction', () => {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      gradcheck((x) => crossEntropy(x, targets([4, 0, -1, 2, 2, 1], ref, [2, 3]), { reduction, ignoreIndex: -1 }), [logits([2, 3, 5], 3, ref, 'float64', 1)]);
    }
  });
});

describe('the WebAssembly SIMD row passes', () => {
  const simd = createSimdSoftmaxCE();
  it('are available where WebAssembly SIMD is', () => expect(simd).not.toBeNull());

  it('exp: within 2e-7 relative of Math.exp over [-87.3, 88.3]; 0 for -Infinity and far below; NaN stays NaN', () => {
    const n = 200_003;
    const xs = Float32Array.from({ length: n }, (_, i) => -87.3 + (175.6 * i) / (n - 1));
    const ys = simd!.exp(xs);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(ys[i] - Math.exp(xs[i])) / Math.exp(xs[i]));
    expect(worst).toBeLessThan(2e-7);
    expect(worst).toBeGreaterThan(0); // it is an approximation, and this test can see one
    expect(Array.from(simd!.exp(Float32Array.from([-Infinity, -1e30, -100, 0, Number.NaN, Infinity])))).toEqual([0, 0, 0, 1, Number.NaN, Infinity]);
  });

  it('agree with the JavaScript passes across chunk boundaries, with ignored rows, and on a row longer than a chunk', () => {
    for (const [N, C] of [[15, 5000], [7, 33], [2, 40_000]]) {
      const g = new Generator(N * C);
      const x = Float32Array.from({ length: N * C }, () => 4 * g.normal());
      const t = Int32Array.from({ length: N }, (_, i) => (i % 4 === 1 ? -1 : g.int(C)));
      const dl = Float32Array.from({ length: N }, () => g.uniform(-2, 2));
      const run = (k: typeof jsSoftmaxCE): [Float32Array, Float64Array, Float32Array] => {
        const losses = new Float32Array(N), saved = new Float64Array(2 * N), dx = new Float32Array(N * C);
        k.forward(x, t, N, C, -1, losses, saved);
        k.backward(x, t, saved, dl, N, C, -1, dx);
        return [losses, saved, dx];
      };
      const [lj, , dj] = run(jsSoftmaxCE);
      const [ls, ss, ds] = run(simd!);
      assertClose(ls, lj, 1e-6, 1e-6, `losses [${N}, ${C}]`);
      assertClose(ds, dj, 1e-5, 1e-9, `gradients [${N}, ${C}]`);
      for (let r = 0; r < N; r++) if (t[r] === -1) expect([ls[r], ss[2 * r], ss[2 * r + 1]]).toEqual([0, 0, 0]);
    }
  });
});

describe('a backend without the fused kernels', () => {
  // The kernels are optional in Backend: a backend that lacks them (a device backend, say) gets the composition.
  const bare = Object.assign(new ReferenceBackend(), { softmaxCrossEntropy: undefined, softmaxCrossEntropyBackward: undefined });
  it('gets the composed result and gradient', () => {
    const x = logits([4, 6], 11, bare, 'float64');
    const t = targets([5, -100, 0, 2], bare);
    const viaFallback = lossAndGrad(() => softmaxCrossEntropy(x, t, -100), x);
    const out = softmaxCrossEntropy(x, t, -100);
    expect(out.node?.op).not.toBe('softmaxCrossEntropy');
    const ref = backend('reference');
    const xr = tensor(Array.from(x.data), [4, 6], { backend: ref, dtype: 'float64', requiresGrad: true });
    const fused = lossAndGrad(() => softmaxCrossEntropy(xr, targets([5, -100, 0, 2], ref), -100), xr);
    assertClose(viaFallback.loss, fused.loss, 1e-12, 1e-14, 'losses');
    assertClose(viaFallback.grad, fused.grad, 1e-12, 1e-14, 'gradients');
  });
});

describe('softmaxCrossEntropy argument errors', () => {
  const ref = backend('reference');
  const x = logits([3, 4], 1, ref, 'float64');
  it('names the argument and the shapes', () => {
    expect(() => softmaxCrossEntropy(logits([2, 3, 4], 1, ref, 'float64'), targets([0, 1], ref))).toThrow(ShapeError);
    expect(() => softmaxCrossEntropy(logits([2, 3, 4], 1, ref, 'float64'), targets([0, 1], ref))).toThrow("softmaxCrossEntropy: 'logits' must be 2-D [N, C], got [2, 3, 4]");
    expect(() => softmaxCrossEntropy(x, targets([0, 1], ref))).toThrow("softmaxCrossEntropy: 'targets' must be [3] (one per row of 'logits' [3, 4]), got [2]");
    expect(() => softmaxCrossEntropy(x, targets([0, 4, 1], ref))).toThrow("softmaxCrossEntropy: 'targets' [3] holds 4 at position 1, out of range for 'logits' [3, 4] (4 classes)");
    expect(() => softmaxCrossEntropy(x, targets([0, -100, 1], ref))).toThrow(/holds -100 at position 1/);
    expect(() => softmaxCrossEntropy(x, tensor([0, 1, 2], { backend: ref }))).toThrow(LoomError);
    expect(() => softmaxCrossEntropy(x, tensor([0, 1, 2], { backend: ref }))).toThrow("softmaxCrossEntropy: 'targets' must be int32 class indices, got float32");
    expect(() => softmaxCrossEntropy(targets([0, 1, 2, 3], ref, [2, 2]), targets([0, 1], ref))).toThrow("softmaxCrossEntropy: argument 'logits' must be a float tensor, got int32");
  });
  it('takes targets from another backend (class indices are read on the host)', () => {
    const t = targets([3, 0, 2], ref);
    expect(Array.from(softmaxCrossEntropy(x, targets([3, 0, 2], backend('wasm'))).data)).toEqual(Array.from(softmaxCrossEntropy(x, t).data));
    expect(crossEntropy(x, targets([3, 0, 2], backend('wasm'))).item()).toBe(crossEntropy(x, t).item());
  });
});
