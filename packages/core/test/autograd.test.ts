// Semantics of reverse-mode differentiation: accumulation, shared inputs, noGrad, detach, errors, long graphs.
import { describe, expect, it } from 'vitest';
import {
  LoomError, ShapeError, add, backend, exp, gt, isGradEnabled, matmul, mul, noGrad, ones, sum, tanh, tensor, type Tensor,
} from '../src/index.js';

const ref = backend('reference');
const leaf = (values: number[], shape?: number[]): Tensor =>
  tensor(values, shape ?? [values.length], { dtype: 'float64', requiresGrad: true, backend: ref });

describe('gradient accumulation', () => {
  it('adds into .grad across two backward calls (not replaced), in the same storage', () => {
    const x = leaf([1, 2, 3]);
    sum(mul(x, x)).backward();
    expect(Array.from(x.grad!.data)).toEqual([2, 4, 6]);
    const first = x.grad!;
    sum(mul(x, 3)).backward();
    expect(Array.from(x.grad!.data)).toEqual([5, 7, 9]);
    expect(x.grad).toBe(first); // accumulated in place: flat gradient buffers stay views
  });

  it('sums the gradient of a tensor used several times in one graph', () => {
    const x = leaf([1.5, -2]);
    // y = x·x + x + exp(x): dy/dx = 2x + 1 + exp(x)
    sum(add(add(mul(x, x), x), exp(x))).backward();
    expect(Array.from(x.grad!.data)).toEqual([2 * 1.5 + 1 + Math.exp(1.5), 2 * -2 + 1 + Math.exp(-2)]);
    const w = leaf([1, 2, 3, 4], [2, 2]);
    sum(matmul(w, w)).backward();
    // Σ(W·W) = 1ᵀ·W·W·1: the gradient is G·Wᵀ + Wᵀ·G with G all ones = W's row sums [3, 7] across plus its column sums [4, 6] down.
    expect(w.grad!.tolist()).toEqual([[3 + 4, 7 + 4], [3 + 6, 7 + 6]]);
  });

  it('a leaf seed gradient is copied, not aliased', () => {
    const x = leaf([1, 2]);
    const g = tensor([5, 6], { dtype: 'float64', backend: ref });
    x.backward(g);
    g.data[0] = 100;
    expect(Array.from(x.grad!.data)).toEqual([5, 6]);
  });

  it('only leaves keep .grad; inputs that do not require grad get none', () => {
    const x = leaf([1, 2]);
    const c = tensor([3, 4], { dtype: 'float64', backend: ref });
    const y = mul(x, c);
    const z = sum(tanh(y));
    z.backward();
    expect(x.grad).not.toBeNull();
    expect(y.grad).toBeNull();
    expect(z.grad).toBeNull();
    expect(c.grad).toBeNull();
  });
});

describe('graph recording', () => {
  it('records only when an input requires grad', () => {
    const x = leaf([1]);
    const c = tensor([2], { dtype: 'float64', backend: ref });
    expect(mul(c, c).requiresGrad).toBe(false);
    expect(mul(c, c).node).toBeNull();
    const y = mul(x, c);
    expect(y.requiresGrad).toBe(true);
    expect(y.node?.op).toBe('mul');
    expect(y.node?.inputs).toEqual([x, c]);
  });

  it('noGrad records nothing, nests, and restores the mode even when fn throws', () => {
    const x = leaf([1, 2]);
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      noGrad(() => undefined);
      expect(isGradEnabled()).toBe(false);
      return mul(x, x);
    });
    expect(isGradEnabled()).toBe(true);
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(Array.from(y.data)).toEqual([1, 4]);
    expect(() => noGrad(() => { throw new Error('boom'); })).toThrow('boom');
    expect(isGradEnabled()).toBe(true);
    expect(() => sum(y).backward()).toThrow(LoomError);
  });

  it('detach shares the values and stops the gradient', () => {
    const x = leaf([2, 3]);
    const d = x.detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.node).toBeNull();
    expect(d.data).toBe(x.data);
    // z = x · detach(x): dz/dx = detach(x) only.
    sum(mul(x, d)).backward();
    expect(Array.from(x.grad!.data)).toEqual([2, 3]);
  });

  it('comparisons have no gradient', () => {
    const x = leaf([-1, 2]);
    expect(gt(x, 0).requiresGrad).toBe(false);
    expect(Array.from(gt(x, 0).data)).toEqual([0, 1]);
  });
});

describe('backward errors', () => {
  it('a non-scalar output needs a gradient of its size', () => {
    const y = mul(leaf([1, 2, 3, 4, 5, 6], [2, 3]), 2);
    expect(() => y.backward()).toThrow(ShapeError);
    expect(() => y.backward()).toThrow('backward: a gradient is needed for a non-scalar output of shape [2, 3]');
    expect(() => y.backward(ones([4], { dtype: 'float64', backend: ref }))).toThrow('backward: gradient of shape [4] does not match output shape [2, 3]');
    const x = leaf([1, 2, 3, 4, 5, 6], [2, 3]);
    mul(x, 2).backward(tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype: 'float64', backend: ref }));
    expect(x.grad!.tolist()).toEqual([[2, 4, 6], [8, 10, 12]]);
  });

  it('a tensor that does not require grad cannot backward', () => {
    expect(() => tensor(1).backward()).toThrow('backward: this tensor does not require grad');
  });

  it('a graph is released by backward: going through it again is an error, not a silent wrong gradient', () => {
    const x = leaf([1, 2]);
    const y = mul(x, 2);
    const z = sum(y);
    z.backward();
    expect(() => z.backward()).toThrow(/backward: the graph through 'sum' was already released/);
    expect(() => sum(mul(y, 3)).backward()).toThrow(/graph through 'mul' was already released/);
    expect(z.grad).toBeNull();
    expect(y.grad).toBeNull();
    expect(Array.from(x.grad!.data)).toEqual([2, 2]);
    // Carrying a state over, as truncated BPTT does, works once it is detached.
    sum(mul(y.detach(), x)).backward();
    expect(Array.from(x.grad!.data)).toEqual([4, 6]);
  });
});

describe('long graphs', () => {
  it('20,000 sequential adds backpropagate without overflowing the stack', () => {
    const x = leaf([0.5]);
    let y: Tensor = x;
    for (let i = 0; i < 20_000; i++) y = add(y, 1e-3);
    sum(y).backward();
    expect(x.grad!.item()).toBe(1);
    expect(y.item()).toBeCloseTo(20.5, 9);
  });

  it('a long chain that reuses its input at every step', () => {
    const x = leaf([1]);
    let y: Tensor = x;
    for (let i = 0; i < 20_000; i++) y = add(mul(y, 0.5), x); // y_n → 2 - 2^(1-n)·…, dy/dx → 2
    sum(y).backward();
    expect(x.grad!.item()).toBeCloseTo(2, 12);
  });
});
