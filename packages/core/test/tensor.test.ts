// Creation, reading and printing of tensors.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  ShapeError, arange, backend, fromFunction, fromStorage, full, getBackend, ones, setBackend, tensor, zeros,
} from '../src/index.js';

describe('tensor()', () => {
  it('takes nested arrays: shape from the nesting, float32 by default', () => {
    const t = tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.size).toBe(6);
    expect(t.rank).toBe(2);
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.requiresGrad).toBe(false);
    expect(t.grad).toBeNull();
    expect(tensor([[[1], [2]]]).shape).toEqual([1, 2, 1]);
  });

  it('takes a number (a scalar of shape []), a flat array with a shape, and typed arrays (dtype inferred, copied)', () => {
    const s = tensor(2.5);
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(2.5);
    expect(tensor([1, 2, 3, 4, 5, 6], [3, 2]).tolist()).toEqual([[1, 2], [3, 4], [5, 6]]);
    const src = new Int32Array([7, 8]);
    const t = tensor(src);
    expect(t.dtype).toBe('int32');
    src[0] = 0;
    expect(t.data[0]).toBe(7);
    expect(tensor(new Float64Array([1])).dtype).toBe('float64');
    expect(tensor([1, 2], { dtype: 'float64' }).data).toBeInstanceOf(Float64Array);
    expect(tensor([]).shape).toEqual([0]);
  });

  it('options: dtype, requiresGrad, backend', () => {
    const ref = backend('reference');
    const t = tensor([1.5, -2.5], { dtype: 'float64', requiresGrad: true, backend: ref });
    expect(t.requiresGrad).toBe(true);
    expect(t.backend).toBe(ref);
    expect(tensor([1.9, -2.9], { dtype: 'int32' }).tolist()).toEqual([1, -2]);
    expect(() => tensor([1, 2], { dtype: 'int32', requiresGrad: true })).toThrow(/requireGrad: only float tensors can require gradients, got int32/);
  });

  it('rejects ragged nested arrays, non-numbers and shapes the values do not fill', () => {
    expect(() => tensor([[1, 2], [3]])).toThrow(ShapeError);
    expect(() => tensor([[1, 2], [3]])).toThrow('tensor: ragged nested array at [1]: expected 2 elements at depth 1');
    expect(() => tensor([[1, 2], 3] as never)).toThrow(/ragged nested array at \[1\]/);
    expect(() => tensor([1, [2]] as never)).toThrow('tensor: expected a number at [1], got object');
    expect(() => tensor([1, 'a'] as never)).toThrow('tensor: expected a number at [1], got string');
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow('tensor: 3 values do not fill shape [2, 2] (4 elements)');
  });
});

describe('zeros, ones, full, arange, fromFunction, fromStorage', () => {
  it('fill values with the requested dtype', () => {
    expect(zeros([2, 2]).tolist()).toEqual([[0, 0], [0, 0]]);
    expect(ones([3], { dtype: 'int32' }).data).toEqual(new Int32Array([1, 1, 1]));
    const f = full([2, 1], -0.5, { dtype: 'float64', requiresGrad: true });
    expect(f.tolist()).toEqual([[-0.5], [-0.5]]);
    expect(f.dtype).toBe('float64');
    expect(f.requiresGrad).toBe(true);
    expect(zeros([]).shape).toEqual([]);
    expect(zeros([3, 0]).size).toBe(0);
    expect(arange(5).tolist()).toEqual([0, 1, 2, 3, 4]);
    expect(arange(3, { dtype: 'int32' }).dtype).toBe('int32');
    expect(arange(0).shape).toEqual([0]);
    expect(fromFunction([2, 3], (i) => i * i).tolist()).toEqual([[0, 1, 4], [9, 16, 25]]);
  });

  it('reject bad shapes naming the function', () => {
    expect(() => zeros([2, -1])).toThrow('full: shape [2, -1] must hold non-negative integers');
    expect(() => fromFunction([1.5], () => 0)).toThrow(/fromFunction: shape \[1.5\]/);
  });

  it('fromStorage wraps without copying', () => {
    const store = new Float32Array([1, 2, 3, 4]);
    const t = fromStorage(store, [2, 2], 'float32', backend('reference'));
    store[3] = 9;
    expect(t.tolist()).toEqual([[1, 2], [3, 9]]);
  });

  it('setBackend changes where new tensors live', () => {
    const prev = getBackend();
    try {
      setBackend('reference');
      expect(zeros([1]).backend.name).toBe('reference');
    } finally {
      setBackend(prev);
    }
    expect(() => setBackend('nope')).toThrow(/backend: unknown backend 'nope'; known: reference/);
  });
});

describe('reading values', () => {
  it('tolist nests like torch; a scalar gives a number', () => {
    expect(tensor([[[1, 2]], [[3, 4]]]).tolist()).toEqual([[[1, 2]], [[3, 4]]]);
    expect(tensor(3).tolist()).toBe(3);
    expect(zeros([2, 0]).tolist()).toEqual([[], []]);
  });

  it('item reads a one-element tensor of any rank, else names the shape', () => {
    expect(tensor([[4]]).item()).toBe(4);
    expect(() => tensor([1, 2]).item()).toThrow(ShapeError);
    expect(() => tensor([1, 2]).item()).toThrow('item: expected a tensor with one element, got shape [2]');
  });

  it('toArray is a copy, data is the storage', () => {
    const t = tensor([1, 2]);
    const copy = t.toArray();
    copy[0] = 5;
    expect(t.data[0]).toBe(1);
    expect(t.data).toBe(t.data);
  });
});

describe('printing', () => {
  it('prints a small tensor in full, rows aligned under each other', () => {
    const t = tensor([[1, -2.5, 3], [0.125, 5, 6]]);
    expect(t.toString()).toBe(
      'tensor([[1.0000, -2.5000, 3.0000],\n' +
      '        [0.1250, 5.0000, 6.0000]], shape=[2, 3], dtype=float32)',
    );
    expect(inspect(t)).toBe(t.toString());
    expect(tensor([1, 2], { dtype: 'int32' }).toString()).toBe('tensor([1, 2], shape=[2], dtype=int32)');
    expect(tensor(0.5, { requiresGrad: true }).toString()).toBe('tensor(0.5000, shape=[], dtype=float32, requiresGrad)');
    expect(String(tensor([Number.NaN, Infinity, 1]))).toBe('tensor([NaN, Infinity, 1.0000], shape=[3], dtype=float32)');
  });

  it('switches to scientific notation when fixed point would hide values (tiny gradients)', () => {
    const t = tensor([1e-6, 2, -3e9], { dtype: 'float64' });
    expect(t.toString()).toBe('tensor([1.0000e-6, 2.0000e+0, -3.0000e+9], shape=[3], dtype=float64)');
    expect(String(tensor([2e-5]))).toMatch(/2\.0000e-5/);
    expect(String(tensor([1, 1e9]))).toBe('tensor([1.0000e+0, 1.0000e+9], shape=[2], dtype=float32)');
    expect(String(tensor([1, 5000]))).toBe('tensor([1.0000, 5000.0000], shape=[2], dtype=float32)');
  });

  it('summarises a large tensor: three items each side of "..." on every long axis', () => {
    const t = arange(2000).reshape([40, 50]);
    const s = t.toString();
    const lines = s.split('\n');
    expect(lines).toHaveLength(7); // 3 rows, '...', 3 rows
    expect(lines[0]).toBe('tensor([[0.0000, 1.0000, 2.0000, ..., 47.0000, 48.0000, 49.0000],');
    expect(lines[3]).toBe('        ...,');
    expect(lines[6]).toBe('        [1950.0000, 1951.0000, 1952.0000, ..., 1997.0000, 1998.0000, 1999.0000]], shape=[40, 50], dtype=float32)');
    expect(s).not.toContain('1000.0000');
    // Axes of six or fewer stay whole even when summarising.
    expect(arange(3000).reshape([500, 6]).toString().split('\n')[0]).toBe('tensor([[0.0000, 1.0000, 2.0000, 3.0000, 4.0000, 5.0000],');
  });
});
