// One suite, run against every backend (as tfjs-core does): each kernel on random float32 inputs against
// a float64 definition written with plain index arithmetic (helpers/naive.ts), and against the reference
// backend. backends.test.ts runs it for the core's backends; a backend package calls backendSuite from its
// own tests (packages/backend-tfjs/test). Cases for a dtype the backend declares it lacks (Backend.dtypes)
// are skipped.
import { describe, expect, it } from 'vitest';
import {
  Generator, backend, concat, gatherRows, logSoftmax, matmul, max, permute, slice, sum, tensor, where, fromFunction,
  type Backend, type BinaryOp, type DType, type Tensor, type UnaryOp,
} from '../src/index.js';
import * as ops from '../src/index.js';
import * as naive from './helpers/naive.js';
import { randint, randn } from './helpers/random.js';

const reference = backend('reference');

const UNARY: [UnaryOp, (x: number) => number, (x: number) => number][] = [
  ['neg', (x) => -x, () => -1],
  ['exp', Math.exp, Math.exp],
  ['log', Math.log, (x) => 1 / x],
  ['sqrt', Math.sqrt, (x) => 0.5 / Math.sqrt(x)],
  ['tanh', Math.tanh, (x) => 1 - Math.tanh(x) ** 2],
  ['sigmoid', (x) => 1 / (1 + Math.exp(-x)), (x) => Math.exp(-x) / (1 + Math.exp(-x)) ** 2],
  ['relu', (x) => Math.max(x, 0), (x) => (x > 0 ? 1 : 0)],
  ['abs', Math.abs, (x) => Math.sign(x)],
];

const BINARY: [BinaryOp, (x: number, y: number) => number][] = [
  ['add', (x, y) => x + y], ['sub', (x, y) => x - y], ['mul', (x, y) => x * y], ['div', (x, y) => x / y],
  ['pow', (x, y) => x ** y], ['lt', (x, y) => +(x < y)], ['le', (x, y) => +(x <= y)], ['gt', (x, y) => +(x > y)],
  ['ge', (x, y) => +(x >= y)], ['eq', (x, y) => +(x === y)], ['ne', (x, y) => +(x !== y)],
];

const BROADCASTS: [string, number[], number[]][] = [
  ['same shape', [3, 5], [3, 5]],
  ['scalar b', [3, 5], []],
  ['scalar a', [], [3, 5]],
  ['[1] b', [3, 5], [1]],
  ['row', [3, 5], [5]],
  ['column', [3, 5], [3, 1]],
  ['leading axes', [2, 3, 5], [3, 5]],
  ['both sides', [2, 1, 5], [1, 3, 1]],
  ['middle axis', [2, 3, 5], [2, 1, 5]],
  ['empty', [0, 5], [5]],
];

export function backendSuite(name: string, make: () => Backend): void {
  describe(`backend ${name}`, () => {
    const be: Backend = make();
    // A backend may declare the dtypes it stores (Backend.dtypes); cases for the others are skipped.
    const float64 = be.dtypes?.includes('float64') ?? true;
    const opts = { dtype: 'float32' as DType, backend: be };
    const rand = (shape: number[], seed: number): Tensor => randn(shape, seed, opts);
    /** Values on a coarse grid, so that comparisons meet equal operands. */
    const grid = (shape: number[], seed: number): Tensor => {
      const g = new Generator(seed);
      return fromFunction(shape, () => g.int(5) - 2, opts);
    };
    /** The same tensor's values on the reference backend. */
    const onReference = (t: Tensor): Tensor => tensor(t.toArray(), [...t.shape], { dtype: t.dtype, backend: reference });
    const close = (t: Tensor, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6): void => naive.assertClose(t.data, expected, rtol, atol, `${name}`);

    describe('storage', () => {
      it('alloc is zero-filled; fromArray, read, fill, cast, addInPlace', () => {
        for (const dtype of (['float32', 'float64', 'int32'] as const).filter((d) => d !== 'float64' || float64)) {
          const z = be.read(be.alloc(dtype, 7), dtype);
          expect(Array.from(z)).toEqual([0, 0, 0, 0, 0, 0, 0]);
          const s = be.fromArray(dtype, [1, 2, 3]);
          be.fill(s, dtype, 4);
          expect(Array.from(be.read(s, dtype))).toEqual([4, 4, 4]);
          const t = be.fromArray(dtype, [1, -2, 5]);
          be.addInPlace(s, t, dtype);
          expect(Array.from(be.read(s, dtype))).toEqual([5, 2, 9]);
        }
        const f = be.fromArray('float32', [1.75, -2.5, 3]);
        expect(Array.from(be.read(be.cast(f, 'float32', 'int32'), 'int32'))).toEqual([1, -2, 3]);
        if (float64) expect(Array.from(be.read(be.cast(f, 'float32', 'float64'), 'float64'))).toEqual([1.75, -2.5, 3]);
      });
    });

    describe('unary', () => {
      it.each(UNARY)('%s forward and backward', (op, f, df) => {
        const positive = op === 'log' || op === 'sqrt';
        const x0 = rand([4, 33], 1);
        const x = (positive ? ops.add(ops.abs(x0), 0.1) : x0).detach().requireGrad();
        const y = (ops as unknown as Record<string, (t: Tensor) => Tensor>)[op](x);
        const xs = x.toArray();
        close(y, Array.from(xs, f));
        const g = rand([4, 33], 2);
        y.backward(g);
        const gs = g.data;
        close(x.grad!, Array.from(xs, (v, i) => gs[i] * df(v)), 1e-5, 1e-6);
        naive.assertClose(y.data, (ops as unknown as Record<string, (t: Tensor) => Tensor>)[op](onReference(x.detach())).data, 1e-6, 1e-7, `${name} vs reference`);
      });
    });

    describe('binary with broadcasting', () => {
      for (const [op, f] of BINARY) {
        it.each(BROADCASTS)(`${op}: %s`, (_case, sa, sb) => {
          const isCmp = !['add', 'sub', 'mul', 'div', 'pow'].includes(op);
          const a = op === 'pow' ? ops.abs(rand(sa, 3)) : isCmp ? grid(sa, 3) : rand(sa, 3);
          const b = isCmp ? grid(sb, 4) : rand(sb, 4);
          const out = be.read(be.binary(op, a.storage, a.shape, b.storage, b.shape, naive.broadcastShape(sa, sb), 'float32'), 'float32');
          const expected = naive.binary(f, a.data, sa, b.data, sb);
          naive.assertClose(out, expected.data, 1e-5, 1e-6, `${name} ${op}`);
        });
      }

      // The kernel's fast paths (same shape, scalar on either side) and its general strided path agree.
      it.each(BINARY)('%s: fast paths agree with the general path', (op) => {
        const a = grid([37, 29], 5), b = grid([37, 29], 6), s = be.fromArray('float32', [1]);
        const n = 37 * 29;
        const row = grid([1, 29], 7);
        const rowTiled = be.fromArray('float32', Array.from({ length: n }, (_, i) => row.data[i % 29]));
        const col1 = be.fromArray('float32', new Array(37).fill(1)); // [37, 1]: the scalar through the general path
        const run = (x: unknown, xs: number[], y: unknown, ys: number[]): number[] => Array.from(be.read(be.binary(op, x, xs, y, ys, [37, 29], 'float32'), 'float32'));
        // same-shape path vs general path (row broadcast) on equal logical operands
        expect(run(a.storage, [37, 29], rowTiled, [37, 29])).toEqual(run(a.storage, [37, 29], row.storage, [1, 29]));
        // scalar paths vs general path
        expect(run(a.storage, [37, 29], s, [])).toEqual(run(a.storage, [37, 29], col1, [37, 1]));
        expect(run(s, [], b.storage, [37, 29])).toEqual(run(col1, [37, 1], b.storage, [37, 29]));
        // and the same-shape path against the definition
        const f = BINARY.find(([o]) => o === op)![1];
        naive.assertClose(run(a.storage, [37, 29], b.storage, [37, 29]), naive.binary(f, a.data, [37, 29], b.data, [37, 29]).data, 1e-6, 0);
      });
    });

    it('where with broadcast condition and operands', () => {
      const cond = grid([3, 1, 5], 1), a = rand([4, 5], 2), b = rand([3, 4, 1], 3);
      const out = where(cond, a, b);
      expect(out.shape).toEqual([3, 4, 5]);
      const expected = Float64Array.from({ length: 60 }, (_, i) => {
        const idx = naive.unravel(i, [3, 4, 5]);
        return naive.broadcastRead(cond.data, [3, 1, 5], idx) !== 0 ? naive.broadcastRead(a.data, [4, 5], idx) : naive.broadcastRead(b.data, [3, 4, 1], idx);
      });
      close(out, expected, 0, 0);
    });

    describe('reductions', () => {
      const axesCases: [string, number[] | undefined][] = [['all', undefined], ['0', [0]], ['1', [1]], ['-1', [-1]], ['0, 2', [0, 2]], ['1, 2', [1, 2]]];
      for (const keepDims of [false, true]) {
        it.each(axesCases)(`sum and max over %s, keepDims=${keepDims}`, (_n, axes) => {
          const x = rand([3, 17, 5], 1);
          const s = sum(x, axes, keepDims), m = max(x, axes, keepDims);
          const es = naive.reduce('sum', x.data, x.shape, axes, keepDims), em = naive.reduce('max', x.data, x.shape, axes, keepDims);
          expect(s.shape).toEqual(es.shape);
          expect(m.shape).toEqual(em.shape);
          close(s, es.data, 1e-5, 1e-5);
          close(m, em.data, 0, 0);
        });
      }
      it('max propagates NaN; sums of empty axes are 0', () => {
        const x = tensor([1, Number.NaN, 2, 3, 4, 5], [2, 3], opts);
        expect(Array.from(max(x, 1).data)).toEqual([Number.NaN, 5]);
        expect(Array.from(sum(ops.zeros([2, 0], opts), 1).data)).toEqual([0, 0]);
      });
    });

    describe('matmul', () => {
      const combos: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];
      // Sizes around the wasm kernel's tiles (4×8, 3×12), its small-m path (m ≤ 32) and its depth block (256).
      const sizes: [number, number, number][] = [[1, 1, 1], [3, 5, 4], [7, 13, 9], [37, 29, 19], [33, 40, 300], [2, 1, 64]];
      for (const [ta, tb] of combos) {
        it.each(sizes)(`m=%i n=%i k=%i transA=${ta} transB=${tb}`, (m, n, k) => {
          const a = rand(ta ? [k, m] : [m, k], m * 7 + k), b = rand(tb ? [n, k] : [k, n], n * 11 + k);
          const c = matmul(a, b, ta, tb);
          const e = naive.matmul(a.data, a.shape, b.data, b.shape, ta, tb);
          expect(c.shape).toEqual(e.shape);
          close(c, e.data, 1e-4, 1e-4 * Math.sqrt(k));
        });
      }
      const batched: [string, number[], number[]][] = [
        ['[B] × [B]', [4, 6, 5], [4, 5, 7]],
        ['3-D × 2-D', [4, 6, 5], [5, 7]],
        ['2-D × 3-D', [6, 5], [4, 5, 7]],
        ['[B,1] × [1,B]', [3, 1, 6, 5], [1, 3, 5, 7]],
        ['[1] × [B]', [1, 6, 5], [3, 5, 7]],
        ['[B] × [1]', [3, 6, 5], [1, 5, 7]],
      ];
      for (const [ta, tb] of combos) {
        it.each(batched)(`batched %s transA=${ta} transB=${tb}`, (_n, sa, sb) => {
          const t = (s: number[], tr: boolean): number[] => (tr ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : s);
          const a = rand(t(sa, ta), 1), b = rand(t(sb, tb), 2);
          const c = matmul(a, b, ta, tb);
          const e = naive.matmul(a.data, a.shape, b.data, b.shape, ta, tb);
          expect(c.shape).toEqual(e.shape);
          close(c, e.data, 1e-5, 1e-5);
          naive.assertClose(c.data, matmul(onReference(a), onReference(b), ta, tb).data, 1e-5, 1e-5, `${name} vs reference`);
        });
      }
      it('empty products: k = 0 gives zeros, m, n or batch = 0 give empty results, and backward works', () => {
        for (const [ta, tb] of combos) {
          const a = ops.full(ta ? [0, 3] : [3, 0], 1, opts).requireGrad(), b = ops.full(tb ? [4, 0] : [0, 4], 1, opts).requireGrad();
          const c = matmul(a, b, ta, tb);
          expect(c.shape).toEqual([3, 4]);
          expect(Array.from(c.data)).toEqual(new Array(12).fill(0));
          sum(c).backward();
          expect(a.grad!.shape).toEqual(a.shape);
          expect(b.grad!.shape).toEqual(b.shape);
        }
        expect(matmul(ops.zeros([0, 3], opts), ops.zeros([3, 4], opts)).shape).toEqual([0, 4]);
        expect(matmul(ops.zeros([3, 2], opts), ops.zeros([2, 0], opts)).shape).toEqual([3, 0]);
        expect(matmul(ops.zeros([2, 0, 3], opts), ops.zeros([3, 4], opts)).shape).toEqual([2, 0, 4]);
        expect(matmul(ops.zeros([0, 2, 3], opts), ops.zeros([0, 3, 4], opts)).shape).toEqual([0, 2, 4]);
      });
      it.skipIf(!float64)('float64 products', () => {
        const a = randn([5, 7], 1, { backend: be }), b = randn([7, 3], 2, { backend: be });
        expect(matmul(a, b).dtype).toBe('float64');
        naive.assertClose(matmul(a, b).data, naive.matmul(a.data, [5, 7], b.data, [7, 3], false, false).data, 1e-12, 1e-12);
      });
      it('the backward products (matmul gradients) agree with the definition', () => {
        const a = rand([3, 6, 5], 1).requireGrad(), b = rand([5, 7], 2).requireGrad();
        const g = rand([3, 6, 7], 3);
        matmul(a, b).backward(g);
        // dA = G·Bᵀ, dB = Σ_batch Aᵀ·G
        close(a.grad!, naive.matmul(g.data, g.shape, b.data, b.shape, false, true).data, 1e-5, 1e-5);
        const aFlat = [18, 5], gFlat = [18, 7];
        close(b.grad!, naive.matmul(a.data, aFlat, g.data, gFlat, true, false).data, 1e-5, 1e-5);
      });
    });

    describe('movement', () => {
      it('permute', () => {
        const x = rand([2, 3, 4, 5], 1);
        for (const perm of [[3, 1, 0, 2], [0, 2, 1, 3], [1, 0, 3, 2]]) {
          const y = permute(x, perm);
          expect(y.shape).toEqual(perm.map((p) => x.shape[p]));
          close(y, naive.permute(x.data, x.shape, perm), 0, 0);
        }
      });
      it('slice forward and backward (sliceCopy, sliceAddInto)', () => {
        const x = rand([4, 5, 6], 1).requireGrad();
        const y = slice(x, [1, -4, 2], [-1, 5, 100]);
        expect(y.shape).toEqual([2, 4, 4]);
        close(y, naive.slice(x.data, x.shape, [1, 1, 2], [2, 4, 4]), 0, 0);
        const g = rand([2, 4, 4], 2);
        y.backward(g);
        const expected = Float64Array.from({ length: x.size }, (_, i) => {
          const [a, b, c] = naive.unravel(i, x.shape);
          return a >= 1 && a < 3 && b >= 1 && c >= 2 ? g.data[naive.ravel([a - 1, b - 1, c - 2], [2, 4, 4])] : 0;
        });
        close(x.grad!, expected, 0, 0);
      });
      it('concat', () => {
        const parts = [rand([2, 1, 3], 1), rand([2, 4, 3], 2), rand([2, 2, 3], 3)];
        const y = concat(parts, 1);
        expect(y.shape).toEqual([2, 7, 3]);
        const expected = Float64Array.from({ length: y.size }, (_, i) => {
          const [a, b, c] = naive.unravel(i, [2, 7, 3]);
          const [p, off] = b < 1 ? [0, 0] : b < 5 ? [1, 1] : [2, 5];
          return parts[p].data[naive.ravel([a, b - off, c], parts[p].shape)];
        });
        close(y, expected, 0, 0);
      });
      it('gatherRows and its scatter-add backward', () => {
        const table = rand([6, 5], 1).requireGrad();
        const idx = randint([3, 4], 6, 2, { backend: be });
        const y = gatherRows(table, idx);
        expect(y.shape).toEqual([3, 4, 5]);
        close(y, Float64Array.from({ length: y.size }, (_, i) => table.data[idx.data[Math.floor(i / 5)] * 5 + (i % 5)]), 0, 0);
        const g = rand([3, 4, 5], 3);
        y.backward(g);
        const expected = new Float64Array(30);
        for (let i = 0; i < 12; i++) for (let j = 0; j < 5; j++) expected[idx.data[i] * 5 + j] += g.data[i * 5 + j];
        close(table.grad!, expected, 1e-6, 1e-6);
      });
    });

    describe('logSoftmax', () => {
      it('forward and backward against the definition', () => {
        const x = ops.mul(rand([7, 37], 1), 4).detach().requireGrad();
        const y = logSoftmax(x);
        close(y, naive.logSoftmaxRows(x.data, 7, 37), 1e-5, 1e-5);
        const g = rand([7, 37], 2);
        y.backward(g);
        // dx = g - softmax · Σg per row
        const expected = Float64Array.from({ length: x.size }, (_, i) => {
          const r = Math.floor(i / 37);
          let s = 0;
          for (let j = 0; j < 37; j++) s += g.data[r * 37 + j];
          return g.data[i] - Math.exp(y.data[i]) * s;
        });
        close(x.grad!, expected, 1e-5, 1e-5);
      });
      it('is stable for large logits and handles -Infinity (masked) entries', () => {
        const x = tensor([1000, 1001, 999, -Infinity, 0, 5, -Infinity, 1], [2, 4], opts);
        const y = logSoftmax(x);
        close(y, naive.logSoftmaxRows([1000, 1001, 999, -Infinity, 0, 5, -Infinity, 1], 2, 4), 1e-5, 1e-5);
        expect(Array.from(y.data).filter((v) => Number.isNaN(v))).toEqual([]);
      });
    });
  });
}
