// Every primitive and composed op: analytic gradients against central finite differences in float64
// on the reference backend (helpers/gradcheck.ts).
import { describe, expect, it } from 'vitest';
import {
  Generator, add, clamp, concat, crossEntropy, div, dropout, embedding, expand, gatherRows, linear, logSoftmax,
  matmul, max, maskedFill, mean, mul, neg, permute, pow, reshape, slice, softmax, split, squeeze, stack, sub, sum,
  sumTo, tensor, transpose, unsqueeze, where, type Tensor,
} from '../src/index.js';
import * as ops from '../src/index.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randAway, randint, randn, randu } from './helpers/random.js';

const R = { requiresGrad: true } as const;
const ref = { backend: 'reference' as const };
const ints = (values: number[], shape?: number[]): Tensor => tensor(values, shape ?? [values.length], { dtype: 'int32', backend: ops.backend('reference') });

describe('gradcheck helper', () => {
  it('catches a wrong backward rule', () => {
    // x·x with the product's second operand detached: the analytic gradient is x, the true one 2x.
    const x = randn([3], 1, R);
    expect(() => gradcheck((a) => mul(a, a.detach()), [x])).toThrow(/analytic .* numeric/);
  });
});

describe('unary primitives', () => {
  const cases: [string, (x: Tensor) => Tensor, () => Tensor][] = [
    ['neg', ops.neg, () => randn([3, 4], 1, R)],
    ['exp', ops.exp, () => randn([3, 4], 2, R)],
    ['log', ops.log, () => randu([3, 4], 0.2, 3, 3, R)],
    ['sqrt', ops.sqrt, () => randu([3, 4], 0.2, 3, 4, R)],
    ['tanh', ops.tanh, () => randn([3, 4], 5, R)],
    ['sigmoid', ops.sigmoid, () => randn([3, 4], 6, R)],
    ['relu', ops.relu, () => randAway([3, 4], 7, R)],
    ['abs', ops.abs, () => randAway([3, 4], 8, R)],
  ];
  it.each(cases)('%s', (_name, f, make) => gradcheck(f, [make()]));
});

describe('binary primitives with broadcasting', () => {
  // [a shape, b shape]: same, scalar both ways, row, column, leading axes, both sides broadcast.
  const shapes: [string, number[], number[]][] = [
    ['same', [3, 4], [3, 4]],
    ['scalar b', [3, 4], []],
    ['scalar a', [], [3, 4]],
    ['row', [3, 4], [4]],
    ['row kept', [3, 4], [1, 4]],
    ['column', [3, 4], [3, 1]],
    ['leading axis', [2, 3, 4], [3, 4]],
    ['leading axis on a', [4], [2, 3, 4]],
    ['both broadcast', [2, 1, 4], [1, 3, 1]],
    ['outer', [2, 3, 4], [2, 1, 1]],
  ];
  const opsToCheck: [string, (a: Tensor, b: Tensor) => Tensor, (s: number[], seed: number) => Tensor, (s: number[], seed: number) => Tensor][] = [
    ['add', add, (s, k) => randn(s, k, R), (s, k) => randn(s, k, R)],
    ['sub', sub, (s, k) => randn(s, k, R), (s, k) => randn(s, k, R)],
    ['mul', mul, (s, k) => randn(s, k, R), (s, k) => randn(s, k, R)],
    ['div', div, (s, k) => randn(s, k, R), (s, k) => randAway(s, k, R)],
    ['pow', pow, (s, k) => randu(s, 0.5, 2, k, R), (s, k) => randu(s, -2, 2, k, R)],
  ];
  for (const [opName, f, makeA, makeB] of opsToCheck) {
    it.each(shapes)(`${opName}: %s`, (_n, sa, sb) => {
      const a = makeA(sa, 11), b = makeB(sb, 12);
      gradcheck(f, [a, b]);
      // The gradient of each operand has its own shape: broadcasting is undone by summation.
      expect(a.grad!.shape).toEqual(sa);
      expect(b.grad!.shape).toEqual(sb);
    });
  }

  it('number operands are lifted and get no gradient', () => {
    gradcheck((a) => add(mul(a, 3), 2), [randn([2, 3], 1, R)]);
    gradcheck((a) => div(1, sub(5, a)), [randn([2, 3], 2, R)]);
    gradcheck((a) => pow(a, 3), [randn([2, 3], 3, R)]);
    gradcheck((a) => pow(2, a), [randn([2, 3], 4, R)]);
  });

  it('only the operand that requires grad gets a gradient', () => {
    const a = randn([3, 4], 1, R), b = randn([4], 2);
    gradcheck(mul, [a, b]);
    expect(b.grad).toBeNull();
  });
});

describe('reductions', () => {
  const axesCases: [string, number | number[] | undefined][] = [
    ['all', undefined], ['axis 0', 0], ['axis 1', 1], ['axis -1', -1], ['axes [0, 2]', [0, 2]], ['axes [1, 2]', [1, 2]], ['axes [0, 1, 2]', [0, 1, 2]],
  ];
  for (const keepDims of [false, true]) {
    it.each(axesCases)(`sum %s keepDims=${keepDims}`, (_n, axes) => gradcheck((x) => sum(x, axes, keepDims), [randn([2, 3, 4], 1, R)]));
    it.each(axesCases)(`mean %s keepDims=${keepDims}`, (_n, axes) => gradcheck((x) => mean(x, axes, keepDims), [randn([2, 3, 4], 2, R)]));
    it.each(axesCases)(`max %s keepDims=${keepDims}`, (_n, axes) => gradcheck((x) => max(x, axes, keepDims), [randn([2, 3, 4], 3, R)]));
  }
});

describe('matmul', () => {
  const combos: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];
  // Stored shapes for op(a) [..., m, k] and op(b) [..., k, n], with m=3, k=4, n=5.
  const stored = (batch: number[], rows: number, cols: number, t: boolean): number[] => [...batch, ...(t ? [cols, rows] : [rows, cols])];
  const batchCases: [string, number[], number[]][] = [
    ['2-D', [], []],
    ['batched', [2], [2]],
    ['3-D × 2-D', [2], []],
    ['2-D × 3-D', [], [2]],
    ['[B,1] × [1,B]', [2, 1], [1, 2]],
    ['[1] × [B]', [1], [3]],
    ['[B] × [1]', [3], [1]],
    ['4-D × 2-D', [2, 2], []],
  ];
  for (const [ta, tb] of combos) {
    it.each(batchCases)(`%s transA=${ta} transB=${tb}`, (_n, ba, bb) => {
      const a = randn(stored(ba, 3, 4, ta), 1, R), b = randn(stored(bb, 4, 5, tb), 2, R);
      gradcheck((x, y) => matmul(x, y, ta, tb), [a, b]);
    });
  }
  it('method form and a product used twice', () => {
    const w = randn([4, 4], 3, R);
    gradcheck((x) => x.matmul(x).matmul(x), [w]);
  });
});

describe('movement', () => {
  it('reshape (with -1)', () => gradcheck((x) => mul(reshape(x, [4, -1]), randn([4, 6], 9)), [randn([2, 3, 4], 1, R)]));
  it('permute', () => gradcheck((x) => permute(x, [2, 0, 1]), [randn([2, 3, 4], 1, R)]));
  it('transpose (default and named axes)', () => {
    gradcheck((x) => transpose(x), [randn([2, 3, 4], 1, R)]);
    gradcheck((x) => transpose(x, 0, 2), [randn([2, 3, 4], 2, R)]);
    gradcheck((x) => x.transpose(-3, 1), [randn([2, 3, 4], 3, R)]);
  });
  it('slice (positive, negative and clamped ends)', () => {
    gradcheck((x) => slice(x, [0, 1, 1], [2, 3, 3]), [randn([2, 3, 4], 1, R)]);
    gradcheck((x) => slice(x, [-1, -2, 0], [2, -1, 4]), [randn([2, 3, 4], 2, R)]);
    gradcheck((x) => x.slice([1, 0], [100, 2]), [randn([3, 4], 3, R)]);
  });
  it('concat along each axis, some inputs without grad', () => {
    for (const axis of [0, 1, -1]) {
      const shape = (d: number): number[] => [2, 3, 4].map((v, i) => (i === (axis + 3) % 3 ? d : v));
      gradcheck((a, b, c) => concat([a, b, c], axis), [randn(shape(1), 1, R), randn(shape(2), 2), randn(shape(3), 3, R)]);
    }
  });
  it('stack', () => {
    gradcheck((a, b) => stack([a, b], 0), [randn([3, 4], 1, R), randn([3, 4], 2, R)]);
    gradcheck((a, b) => stack([a, b], -1), [randn([3, 4], 3, R), randn([3, 4], 4, R)]);
  });
  it('split into equal parts and given sizes', () => {
    const g = randn([2, 6], 5);
    gradcheck((x) => { const [p, q, r] = split(x, 3, 1); return add(mul(p, q), mul(r, g.slice([0, 0], [2, 2]))); }, [randn([2, 6], 1, R)]);
    gradcheck((x) => { const [p, q] = split(x, [1, 3], 0); return add(sum(p), sum(mul(q, q))); }, [randn([4, 3], 2, R)]);
  });
  it('unsqueeze, squeeze, expand', () => {
    gradcheck((x) => mul(unsqueeze(x, 1), randn([3, 2, 4], 6)), [randn([3, 4], 1, R)]);
    gradcheck((x) => squeeze(x, 1), [randn([3, 1, 4], 2, R)]);
    gradcheck((x) => squeeze(x), [randn([1, 3, 1], 3, R)]);
    gradcheck((x) => expand(x, [2, 3, 4]), [randn([3, 1], 4, R)]);
  });
  it('gatherRows: repeated indices accumulate', () => {
    const table = randn([5, 3], 1, R);
    gradcheck((t) => gatherRows(t, ints([4, 0, 4, 4, 2, 0], [2, 3])), [table]);
    // Row 4 was picked three times: its gradient is the sum of three output gradients.
    const t2 = randn([5, 3], 2, R);
    sum(gatherRows(t2, ints([4, 4, 4, 1]))).backward();
    expect(Array.from(t2.grad!.data)).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 3, 3, 3]);
  });
  it('sumTo', () => gradcheck((x) => sumTo(x, [3, 1]), [randn([2, 3, 4], 1, R)]));
});

describe('selection and masking', () => {
  it('where with broadcast condition and operands', () => {
    const cond = tensor([1, 0, 0, 1], [4], { dtype: 'float64', backend: ops.backend('reference') });
    gradcheck((a, b) => where(cond, a, b), [randn([3, 4], 1, R), randn([3, 1], 2, R)]);
    const cond2 = ops.gt(randn([3, 1], 7), 0);
    gradcheck((a, b) => where(cond2, a, b), [randn([4], 3, R), randn([3, 4], 4, R)]);
    gradcheck((a) => where(cond, a, 0), [randn([2, 4], 5, R)]);
  });
  it('clamp (min, max, both)', () => {
    // Values far from the bounds, so no finite-difference step crosses a kink.
    const x = () => tensor([-2, -0.7, -0.2, 0.1, 0.4, 1.3, 2.5, 0.9], [2, 4], { dtype: 'float64', requiresGrad: true, backend: ops.backend('reference') });
    gradcheck((v) => clamp(v, -0.5), [x()]);
    gradcheck((v) => clamp(v, undefined, 0.5), [x()]);
    gradcheck((v) => clamp(v, -0.5, 0.5), [x()]);
  });
  it('maskedFill', () => {
    const mask = tensor([0, 1, 1, 0, 0, 1], [2, 3], { dtype: 'float64', backend: ops.backend('reference') });
    gradcheck((x) => maskedFill(x, mask, -7), [randn([2, 3], 1, R)]);
    gradcheck((x) => maskedFill(x, tensor([1, 0, 0], [3], { dtype: 'float64', backend: ops.backend('reference') }), 0), [randn([2, 3], 2, R)]);
  });
});

describe('softmax family and losses', () => {
  it.each([[-1], [0], [1]])('logSoftmax axis %i', (axis) => gradcheck((x) => logSoftmax(x, axis), [randn([2, 3, 4], 1, R)]));
  it.each([[-1], [0], [1]])('softmax axis %i', (axis) => gradcheck((x) => softmax(x, axis), [randn([2, 3, 4], 2, R)]));
  it('method forms', () => gradcheck((x) => x.softmax(0).mul(x.logSoftmax()), [randn([3, 4], 3, R)]));

  const targets = ints([0, 3, 2, 1, 3, 0]);
  it.each([['mean'], ['sum'], ['none']] as const)('crossEntropy reduction=%s', (reduction) => {
    gradcheck((l) => crossEntropy(l, targets, { reduction }), [randn([6, 4], 1, R)]);
  });
  it.each([['mean'], ['sum'], ['none']] as const)('crossEntropy with ignoreIndex, reduction=%s', (reduction) => {
    const t = ints([0, -100, 2, -100, 3, 1]);
    gradcheck((l) => crossEntropy(l, t, { reduction, ignoreIndex: -100 }), [randn([6, 4], 2, R)]);
  });
  it('crossEntropy over [T, B, V] logits', () => {
    const t = randint([3, 2], 5, 9, ref);
    gradcheck((l) => crossEntropy(l, t), [randn([3, 2, 5], 3, R)]);
  });
});

describe('layers as functions', () => {
  it('linear with and without bias, 2-D and 3-D input', () => {
    gradcheck((x, w, b) => linear(x, w, b), [randn([4, 3], 1, R), randn([5, 3], 2, R), randn([5], 3, R)]);
    gradcheck((x, w) => linear(x, w), [randn([2, 4, 3], 4, R), randn([5, 3], 5, R)]);
    gradcheck((x, w, b) => linear(x, w, b), [randn([2, 4, 3], 6, R), randn([5, 3], 7, R), randn([5], 8, R)]);
  });
  it('embedding', () => gradcheck((t) => embedding(ints([1, 3, 1, 0], [2, 2]), t), [randn([4, 3], 1, R)]));
  it('dropout with a fixed mask', () => {
    // A fresh generator with the same seed on every call: the same mask for the analytic and numeric passes.
    gradcheck((x) => dropout(x, 0.3, true, new Generator(42)), [randn([4, 5], 1, R)]);
  });
  it('a small recurrent step composed from many ops', () => {
    // h' = tanh(x·Wᵀ + h·Uᵀ + b) ⊙ sigmoid(gate), unrolled twice, with a cross-entropy readout.
    const xs = randn([2, 3, 4], 5);
    const targets = ints([1, 0, 2]);
    gradcheck((W, U, b, gate, out) => {
      let h = ops.zeros([3, 5], { dtype: 'float64', backend: ops.backend('reference') });
      for (let t = 0; t < 2; t++) {
        const x = squeeze(slice(xs, [t, 0, 0], [t + 1, 3, 4]), 0);
        h = mul(ops.tanh(add(linear(x, W, b), linear(h, U))), ops.sigmoid(gate));
      }
      return crossEntropy(linear(h, out), targets);
    }, [randn([5, 4], 1, R), randn([5, 5], 2, R), randn([5], 3, R), randn([5], 4, R), randn([3, 5], 6, R)]);
  });
  it('neg and mean of a product (x used in several places)', () => gradcheck((x) => mean(mul(neg(x), add(x, x))), [randn([3, 3], 1, R)]));
});
