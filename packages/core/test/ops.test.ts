// Forward values and contracts of the primitives and composed ops (gradients: gradcheck.test.ts;
// kernels on every backend: backends.test.ts), and the shape errors they raise.
import { describe, expect, it } from 'vitest';
import {
  Generator, LoomError, ShapeError, add, backend, clamp, concat, crossEntropy, div, dropout, embedding, eq, expand,
  gatherRows, ge, gt, le, linear, logSoftmax, lt, matmul, max, maskedFill, mean, mul, ne, permute, reshape, slice,
  softmax, split, squeeze, stack, sub, sum, sumTo, tensor, transpose, unsqueeze, where, zeros, type Tensor,
} from '../src/index.js';
import * as naive from './helpers/naive.js';
import { randint, randn } from './helpers/random.js';

const ref = backend('reference');
const f64 = (values: number[], shape?: number[]): Tensor => tensor(values, shape ?? [values.length], { dtype: 'float64', backend: ref });
const i32 = (values: number[], shape?: number[]): Tensor => tensor(values, shape ?? [values.length], { dtype: 'int32', backend: ref });

describe('elementwise', () => {
  it('binary ops broadcast and lift numbers', () => {
    const a = f64([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(add(a, f64([10, 20, 30])).tolist()).toEqual([[11, 22, 33], [14, 25, 36]]);
    expect(sub(a, f64([1, 2], [2, 1])).tolist()).toEqual([[0, 1, 2], [2, 3, 4]]);
    expect(div(12, a).tolist()).toEqual([[12, 6, 4], [3, 12 / 5, 2]]);
    expect(mul(a, 2).dtype).toBe('float64');
    expect(add(f64([1], []), f64([1, 2], [2, 1])).shape).toEqual([2, 1]);
  });

  it('comparisons give 0/1 in the operands dtype', () => {
    const a = f64([1, 2, 3]), b = f64([2, 2, 2]);
    expect([lt, le, gt, ge, eq, ne].map((f) => Array.from(f(a, b).data))).toEqual([
      [1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 0, 1],
    ]);
    expect(gt(a, 2).dtype).toBe('float64');
  });

  it('operands must share dtype and backend; ops that need floats say so', () => {
    expect(() => add(f64([1]), tensor([1], { backend: ref }))).toThrow('add: operands have different dtypes (float64 and float32)');
    expect(() => add(f64([1]), tensor([1], { dtype: 'float64', backend: backend('wasm') }))).toThrow(/add: operands live on different backends \(reference and wasm/);
    expect(() => i32([1]).exp()).toThrow("exp: argument 'x' must be a float tensor, got int32");
  });

  it('where, clamp, maskedFill', () => {
    const x = f64([-2, -0.5, 0.5, 2]);
    expect(Array.from(where(gt(x, 0), x, f64([9])).data)).toEqual([9, 9, 0.5, 2]);
    expect(Array.from(clamp(x, -1, 1).data)).toEqual([-1, -0.5, 0.5, 1]);
    expect(Array.from(clamp(x, 0).data)).toEqual([0, 0, 0.5, 2]);
    expect(Array.from(clamp(x, undefined, 0).data)).toEqual([-2, -0.5, 0, 0]);
    const scores = f64([1, 2, 3, 4, 5, 6], [2, 3]);
    const causal = f64([0, 1, 1], [1, 3]);
    expect(maskedFill(scores, causal, -1e9).tolist()).toEqual([[1, -1e9, -1e9], [4, -1e9, -1e9]]);
  });
});

describe('reductions', () => {
  const x = f64([1, 5, 3, 4, 2, 6, 0, 9, 8, 7, 11, 10], [2, 3, 2]);
  it('sum, mean, max over axes with keepDims both ways', () => {
    expect(sum(x).item()).toBe(66);
    expect(sum(x, 1).tolist()).toEqual([[6, 15], [19, 26]]);
    expect(sum(x, [0, 2], true).tolist()).toEqual([[[15], [22], [29]]]);
    expect(mean(x, -1).tolist()).toEqual([[3, 3.5, 4], [4.5, 7.5, 10.5]]);
    expect(max(x, [1, 2]).tolist()).toEqual([6, 11]);
    expect(max(x, 0, true).shape).toEqual([1, 3, 2]);
    expect(x.sum([0, 1]).tolist()).toEqual([25, 41]);
    expect(x.max().item()).toBe(11);
    expect(x.mean().item()).toBe(5.5);
  });

  it('max shares the gradient equally among ties (as torch.amax)', () => {
    const t = tensor([3, 1, 3, 2, 2, 2], [2, 3], { dtype: 'float64', requiresGrad: true, backend: ref });
    sum(mul(max(t, 1), f64([1, 6]))).backward();
    expect(t.grad!.tolist()).toEqual([[0.5, 0, 0.5], [2, 2, 2]]);
  });

  it('reject bad axes, naming the op', () => {
    expect(() => sum(x, 3)).toThrow('sum: axis 3 is out of range for a tensor of rank 3');
    expect(() => max(zeros([2, 0]), 1)).toThrow('max: cannot reduce over an empty axis of shape [2, 0]');
    // An int32 mean would be silently truncated.
    expect(() => mean(i32([1, 2]))).toThrow("mean: argument 'x' must be a float tensor, got int32");
  });
});

describe('matmul', () => {
  it('computes batched products with broadcast batch axes', () => {
    const a = randn([2, 1, 3, 4], 1), b = randn([1, 5, 4, 2], 2);
    const c = matmul(a, b);
    expect(c.shape).toEqual([2, 5, 3, 2]);
    naive.assertClose(c.data, naive.matmul(a.data, a.shape, b.data, b.shape, false, false).data, 1e-12, 1e-12);
  });

  it('shape errors name the op, the arguments and both shapes', () => {
    const a = f64(new Array(6).fill(1), [2, 3]), b = f64(new Array(8).fill(1), [4, 2]);
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow("matmul: inner dimensions differ: 'a' [2, 3] has 3, 'b' [4, 2] has 4");
    expect(() => matmul(a, b, false, true)).toThrow("matmul: inner dimensions differ: 'a' [2, 3] has 3, 'b' [4, 2]ᵀ has 2");
    expect(() => matmul(f64([1, 2, 3]), b)).toThrow("matmul: both arguments need at least 2 dimensions, got 'a' [3] and 'b' [4, 2]");
    expect(() => matmul(zeros([2, 2, 3], { dtype: 'float64', backend: ref }), zeros([3, 3, 4], { dtype: 'float64', backend: ref })))
      .toThrow("matmul: 'a' batch axes [2] and 'b' batch axes [3] cannot be broadcast together (axis -1: 2 vs 3) ('a' [2, 2, 3], 'b' [3, 3, 4])");
  });
});

describe('broadcasting errors', () => {
  it('name the op, the arguments and both shapes', () => {
    const a = zeros([2, 3]), b = zeros([4]);
    expect(() => add(a, b)).toThrow(ShapeError);
    expect(() => add(a, b)).toThrow("add: 'a' [2, 3] and 'b' [4] cannot be broadcast together (axis -1: 3 vs 4)");
    expect(() => mul(b, a)).toThrow("mul: 'a' [4] and 'b' [2, 3] cannot be broadcast together");
    expect(() => lt(zeros([2]), zeros([3]))).toThrow("lt: 'a' [2] and 'b' [3] cannot be broadcast together");
    expect(() => where(zeros([3]), zeros([2, 3]), zeros([4]))).toThrow("where: 'cond' and 'a' together [2, 3] and 'b' [4] cannot be broadcast together");
    expect(() => expand(zeros([2, 3]), [4, 3])).toThrow("expand: 'x' [2, 3] and 'shape' [4, 3] cannot be broadcast together");
    expect(() => expand(zeros([3]), [1])).toThrow('expand: cannot expand [3] to [1]');
  });
});

describe('movement', () => {
  const x = f64(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);

  it('reshape shares values; -1 is inferred; errors name both shapes', () => {
    const r = reshape(x, [4, -1]);
    expect(r.shape).toEqual([4, 6]);
    expect(r.data).toBe(x.data);
    expect(x.reshape([24]).tolist()).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(() => reshape(x, [5, 5])).toThrow(ShapeError);
    expect(() => reshape(x, [5, 5])).toThrow('reshape: cannot reshape [2, 3, 4] (24 elements) into [5, 5] (25 elements)');
    expect(() => reshape(x, [5, -1])).toThrow('reshape: cannot reshape [2, 3, 4] (24 elements) into [5, -1]');
    expect(() => reshape(x, [-1, -1])).toThrow('reshape: only one dimension can be -1, got [-1, -1]');
  });

  it('permute and transpose', () => {
    expect(permute(f64([1, 2, 3, 4, 5, 6], [2, 3]), [1, 0]).tolist()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(transpose(x, 0, 2).shape).toEqual([4, 3, 2]);
    expect(transpose(x, 0, 2).tolist()).toEqual(x.permute([2, 1, 0]).tolist());
    expect(() => permute(x, [0, 0, 1])).toThrow('permute: [0, 0, 1] is not a permutation of the 3 axes of [2, 3, 4]');
  });

  it('slice with negative indices and clamped ends; errors name starts, ends and the shape', () => {
    expect(slice(x, [-1, 0, -2], [2, 1, 100]).tolist()).toEqual([[[14, 15]]]);
    expect(slice(x, [0, 1, 0], [1, 1, 4]).shape).toEqual([1, 0, 4]);
    expect(() => slice(x, [0, 2, 0], [2, 1, 4])).toThrow(ShapeError);
    expect(() => slice(x, [0, 2, 0], [2, 1, 4])).toThrow("slice: axis 1: range [2, 1) of 'starts' [0, 2, 0] and 'ends' [2, 1, 4] is outside a dimension of size 3 of 'x' [2, 3, 4]");
    expect(() => slice(x, [-5, 0, 0], [2, 3, 4])).toThrow(/slice: axis 0: range \[-5, 2\)/);
    expect(() => slice(x, [0, 0], [1, 1])).toThrow("slice: 'starts' [0, 0] and 'ends' [1, 1] must have one entry per axis of 'x' [2, 3, 4]");
  });

  it('concat, stack, split, squeeze, unsqueeze', () => {
    const a = f64([1, 2, 3, 4], [2, 2]), b = f64([5, 6], [2, 1]);
    expect(concat([a, b], 1).tolist()).toEqual([[1, 2, 5], [3, 4, 6]]);
    expect(concat([a], 0)).toBe(a);
    expect(stack([a, a], 1).shape).toEqual([2, 2, 2]);
    expect(stack([a, a], 1).tolist()).toEqual([[[1, 2], [1, 2]], [[3, 4], [3, 4]]]);
    const [p, q] = split(f64([1, 2, 3, 4, 5, 6], [3, 2]), [1, 2], 0);
    expect(p.tolist()).toEqual([[1, 2]]);
    expect(q.tolist()).toEqual([[3, 4], [5, 6]]);
    expect(split(f64([1, 2, 3, 4, 5, 6], [2, 3]), 3, -1).map((t) => t.tolist())).toEqual([[[1], [4]], [[2], [5]], [[3], [6]]]);
    expect(unsqueeze(a, -1).shape).toEqual([2, 2, 1]);
    expect(squeeze(zeros([1, 3, 1])).shape).toEqual([3]);
    expect(squeeze(zeros([1, 3, 1]), 0).shape).toEqual([3, 1]);
    expect(() => concat([a, f64([1, 2, 3], [1, 3])], 0)).toThrow(ShapeError);
    expect(() => concat([a, f64([1, 2, 3], [1, 3])], 0)).toThrow("concat: 'xs[1]' [1, 3] does not match 'xs[0]' [2, 2] on the axes other than axis 0");
    expect(() => concat([a, f64([1, 2])], 0)).toThrow("concat: 'xs[1]' [2] does not match 'xs[0]' [2, 2]");
    expect(() => concat([], 0)).toThrow('concat: needs at least one tensor');
    expect(() => split(a, 3, 0)).toThrow('split: axis 0 of [2, 2] (size 2) does not split into 3 equal parts');
    expect(() => split(a, [1, 2], 0)).toThrow('split: sizes [1, 2] do not add up to 2, the size of axis 0 of [2, 2]');
    expect(() => squeeze(a, 0)).toThrow('squeeze: axis 0 of [2, 2] has size 2, not 1');
  });

  it('expand and sumTo', () => {
    expect(expand(f64([1, 2], [2, 1]), [2, 3]).tolist()).toEqual([[1, 1, 1], [2, 2, 2]]);
    expect(sumTo(f64([1, 2, 3, 4, 5, 6], [2, 3]), [1, 3]).tolist()).toEqual([[5, 7, 9]]);
    expect(sumTo(f64([1, 2, 3, 4, 5, 6], [2, 3]), [2, 1]).tolist()).toEqual([[6], [15]]);
    expect(sumTo(f64([1, 2, 3, 4, 5, 6], [2, 3]), []).item()).toBe(21);
  });

  it('gatherRows: out shape [...idx.shape, cols]; out-of-range indices name the indices and the table', () => {
    const table = f64([0, 1, 10, 11, 20, 21], [3, 2]);
    expect(gatherRows(table, i32([2, 0, 2, 1], [2, 2])).tolist()).toEqual([[[20, 21], [0, 1]], [[20, 21], [10, 11]]]);
    expect(embedding(i32([1]), table).tolist()).toEqual([[10, 11]]);
    expect(() => gatherRows(table, i32([0, 3]))).toThrow(ShapeError);
    expect(() => gatherRows(table, i32([0, 3]))).toThrow("gatherRows: 'indices' [2] holds 3 at position 1, out of range for 'table' [3, 2] (3 rows)");
    expect(() => gatherRows(table, i32([-1]))).toThrow(/holds -1 at position 0/);
    expect(() => gatherRows(table, f64([0]))).toThrow("gatherRows: 'indices' must be int32, got float64");
    expect(() => gatherRows(f64([1, 2]), i32([0]))).toThrow("gatherRows: 'table' must be 2-D, got [2]");
  });
});

describe('softmax family', () => {
  it('softmax sums to one along any axis and equals exp(logSoftmax)', () => {
    const x = randn([3, 4, 5], 1);
    for (const axis of [0, 1, 2, -1]) {
      const s = softmax(x, axis);
      const totals = sum(s, axis).data;
      naive.assertClose(totals, new Array(totals.length).fill(1), 1e-12, 1e-12);
      naive.assertClose(s.data, logSoftmax(x, axis).exp().data, 1e-14, 0);
    }
    // along axis 0, against the definition on the permuted rows
    const p = permute(x, [1, 2, 0]);
    const expected = naive.permute(naive.logSoftmaxRows(p.data, 20, 3), [4, 5, 3], [2, 0, 1]);
    naive.assertClose(logSoftmax(x, 0).data, expected, 1e-12, 1e-12);
  });
});

describe('crossEntropy', () => {
  const logits = randn([5, 4], 3);
  const lp = logSoftmax(logits).data;
  const nll = (row: number, cls: number): number => -lp[row * 4 + cls];

  it('matches -log softmax at the target for each reduction', () => {
    const t = i32([0, 3, 1, 1, 2]);
    const each = [0, 1, 2, 3, 4].map((r) => nll(r, t.data[r]));
    naive.assertClose(crossEntropy(logits, t, { reduction: 'none' }).data, each, 1e-12, 0);
    expect(crossEntropy(logits, t, { reduction: 'sum' }).item()).toBeCloseTo(each.reduce((a, b) => a + b), 12);
    expect(crossEntropy(logits, t).item()).toBeCloseTo(each.reduce((a, b) => a + b) / 5, 12);
  });

  it('ignoreIndex drops targets from the loss and from the mean count', () => {
    const t = i32([0, -100, 1, -100, 2]);
    const kept = nll(0, 0) + nll(2, 1) + nll(4, 2);
    expect(crossEntropy(logits, t, { ignoreIndex: -100 }).item()).toBeCloseTo(kept / 3, 12);
    expect(crossEntropy(logits, t, { ignoreIndex: -100, reduction: 'sum' }).item()).toBeCloseTo(kept, 12);
    expect(Array.from(crossEntropy(logits, t, { ignoreIndex: -100, reduction: 'none' }).data).map((v, i) => (i % 2 ? v : 0))).toEqual([0, 0, 0, 0, 0]);
    expect(crossEntropy(logits, i32([7, 7, 7, 7, 7]), { ignoreIndex: 7 }).item()).toBeNaN();
  });

  it('an ignored row with -Infinity (masked) logits does not make the loss NaN', () => {
    const l = tensor([[-Infinity, 1, 2], [0.5, 1, 2]], { dtype: 'float64', requiresGrad: true, backend: ref });
    const loss = crossEntropy(l, i32([-100, 2]), { ignoreIndex: -100 });
    expect(loss.item()).toBeCloseTo(-Math.log(Math.exp(2) / (Math.exp(0.5) + Math.exp(1) + Math.exp(2))), 12);
    loss.backward();
    expect(Array.from(l.grad!.data).every(Number.isFinite)).toBe(true);
    expect(Array.from(l.grad!.data.subarray(0, 3))).toEqual([0, 0, 0]);
  });

  it('[T, B, V] logits with [T, B] targets; reduction none keeps the targets shape', () => {
    const l3 = randn([2, 3, 4], 4), t = randint([2, 3], 4, 5);
    expect(crossEntropy(l3, t, { reduction: 'none' }).shape).toEqual([2, 3]);
    expect(crossEntropy(l3, t).item()).toBeCloseTo(crossEntropy(reshape(l3, [6, 4]), reshape(t, [6])).item(), 12);
  });

  it('errors name the targets and the logits', () => {
    expect(() => crossEntropy(logits, i32([0, 1, 2]))).toThrow(ShapeError);
    expect(() => crossEntropy(logits, i32([0, 1, 2]))).toThrow("crossEntropy: 'logits' [5, 4] and 'targets' [3] disagree: expected targets of shape [5]");
    expect(() => crossEntropy(logits, i32([0, 1, 2, 3, 4], [5, 1]))).toThrow(/expected targets of shape \[5\]/);
    expect(() => crossEntropy(logits, i32([0, 1, 4, 0, 0]))).toThrow("crossEntropy: 'targets' [5] holds 4 at position 2, out of range for 'logits' [5, 4] (4 classes)");
    expect(() => crossEntropy(logits, i32([0, -1, 0, 0, 0]))).toThrow(/holds -1 at position 1/);
    expect(() => crossEntropy(logits, f64([0, 1, 2, 3, 0]))).toThrow("crossEntropy: 'targets' must be int32 class indices, got float64");
  });
});

describe('dropout', () => {
  const x = randn([100, 100], 1);

  it('zeroes about p of the elements and scales the rest by 1/(1-p)', () => {
    const y = dropout(x, 0.25, true, new Generator(3));
    let zeros = 0;
    for (let i = 0; i < y.size; i++) {
      if (y.data[i] === 0) zeros++;
      else expect(y.data[i]).toBeCloseTo(x.data[i] / 0.75, 12);
    }
    // 10,000 Bernoulli(0.25) draws: standard error 0.0043
    expect(Math.abs(zeros / y.size - 0.25)).toBeLessThan(0.02);
  });

  it('is the identity for p = 0 and in evaluation', () => {
    expect(dropout(x, 0, true, new Generator(3))).toBe(x);
    expect(dropout(x, 0.5, false, new Generator(3))).toBe(x);
  });

  it('is reproducible from the generator seed, and different for another seed', () => {
    const a = dropout(x, 0.5, true, new Generator(7)).data, b = dropout(x, 0.5, true, new Generator(7)).data;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(dropout(x, 0.5, true, new Generator(8)).data)).not.toEqual(Array.from(a));
  });

  it('passes the gradient through the kept elements only, scaled', () => {
    const v = tensor([1, 2, 3, 4, 5, 6, 7, 8], { dtype: 'float64', requiresGrad: true, backend: ref });
    const y = dropout(v, 0.5, true, new Generator(11));
    sum(y).backward();
    expect(Array.from(v.grad!.data)).toEqual(Array.from(y.data, (val) => (val === 0 ? 0 : 2)));
  });

  it('rejects p outside [0, 1)', () => {
    expect(() => dropout(x, 1)).toThrow(LoomError);
    expect(() => dropout(x, -0.1)).toThrow('dropout: p must be in [0, 1), got -0.1');
  });
});

describe('linear', () => {
  it('is x·Wᵀ + b over leading axes; errors name x and weight', () => {
    const x = randn([2, 3, 4], 1), w = randn([5, 4], 2), b = randn([5], 3);
    const y = linear(x, w, b);
    expect(y.shape).toEqual([2, 3, 5]);
    const xw = naive.matmul(x.data, [6, 4], w.data, [5, 4], false, true).data;
    naive.assertClose(y.data, naive.binary((p, q) => p + q, xw, [6, 5], b.data, [5]).data, 1e-12, 1e-12);
    expect(() => linear(x, randn([5, 3], 4))).toThrow("linear: 'x' [2, 3, 4] has 4 features, 'weight' [5, 3] expects 3");
    expect(() => linear(x, randn([4], 4))).toThrow("linear: 'weight' must be 2-D [out, in], got [4]");
  });
});
