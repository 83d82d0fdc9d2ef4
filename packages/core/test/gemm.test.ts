import { describe, expect, it } from 'vitest';
import { gemmReference } from '../src/kernels/gemm-reference.js';
import { createWasmGemm, createWasmGemmWithConfig, relaxedSimdSupported, wasmSimdSupported, type WasmGemm } from '../src/kernels/wasm/index.js';
import { TRANSPOSES, expectClose, makeCase, mulberry32, naive, run, wasmBuilds, type Case, type Gemm } from './helpers/gemm-cases.js';

describe('gemmReference', () => {
  it('matches the naive triple loop in float64 for random shapes, transposes, offsets and leading dimensions', () => {
    const rand = mulberry32(1);
    for (let trial = 0; trial < 200; trial++) {
      const [m, n, k] = [0, 0, 0].map(() => Math.floor(rand() * 13));
      const [tA, tB] = TRANSPOSES[trial % 4];
      const t = makeCase(rand, m, n, k, tA, tB, rand() < 0.5, rand() < 0.7);
      expectClose(run(gemmReference, t, Float64Array), naive(t), t, 1e-14);
    }
  });

  it('works in float32 within float32 rounding', () => {
    const rand = mulberry32(2);
    for (const [tA, tB] of TRANSPOSES) {
      const t = makeCase(rand, 9, 11, 40, tA, tB, true, true);
      expectClose(run(gemmReference, t, Float32Array), naive(t), t, 1e-6);
    }
  });

  it('overwrites C when accumulate is false, even with k = 0', () => {
    const c = new Float64Array([7, 7, 7, 7]);
    gemmReference(false, false, 2, 2, 0, new Float64Array(0), 0, 1, new Float64Array(0), 0, 2, c, 0, 2, false);
    expect(Array.from(c)).toEqual([0, 0, 0, 0]);
  });

  it('names the argument that is out of range', () => {
    const x = new Float32Array(6);
    expect(() => gemmReference(false, false, 2, 3, 3, x, 0, 2, x, 0, 3, x, 0, 3, false)).toThrow(/'lda' must be an integer ≥ 3/);
    expect(() => gemmReference(false, false, 2, 3, 3, x, 0, 3, new Float32Array(8), 0, 3, x, 0, 3, false)).toThrow(/argument 'b' is too short/);
    expect(() => gemmReference(false, false, -1, 3, 3, x, 0, 3, x, 0, 3, x, 0, 3, false)).toThrow(/argument 'm'/);
  });
});

describe('wasm GEMM', () => {
  it('detects SIMD and builds the requested flavour', () => {
    expect(wasmSimdSupported()).toBe(true); // Node ≥ 20 always has SIMD128
    expect(createWasmGemm({ relaxed: false })?.relaxed).toBe(false);
    expect(createWasmGemm()?.relaxed).toBe(relaxedSimdSupported());
    if (relaxedSimdSupported()) expect(createWasmGemm({ relaxed: true })?.relaxed).toBe(true);
    else expect(() => createWasmGemm({ relaxed: true })).toThrow(/relaxed/);
  });

  for (const [name, config] of wasmBuilds()) {
    describe(name, () => {
      const kernel: WasmGemm = createWasmGemmWithConfig(config);
      const gemm = kernel.gemm.bind(kernel) as Gemm;
      const check = (t: Case): void => expectClose(run(gemm, t, Float32Array), run(gemmReference, t, Float64Array), t, 1e-5);

      it('matches the reference on random shapes in 0..70', () => {
        const rand = mulberry32(3);
        for (let trial = 0; trial < 160; trial++) {
          const [m, n, k] = [0, 0, 0].map(() => Math.floor(rand() * 71));
          const [tA, tB] = TRANSPOSES[trial % 4];
          check(makeCase(rand, m, n, k, tA, tB, rand() < 0.5, rand() < 0.6));
        }
      });

      it('matches the reference around tile and block edges', () => {
        const rand = mulberry32(4);
        const { rows: MR, cols: NR, kc: KC, mc: MC, smallM } = config;
        const ms = [1, MR - 1, MR, MR + 1, 2 * MR + 1, smallM, smallM + 1, MC - 1, MC + 1].filter((x) => x > 0);
        const ns = [1, NR - 1, NR, NR + 1, 3 * NR + 5].filter((x) => x > 0);
        const ks = [1, KC - 1, KC + 1].filter((x) => x > 0);
        for (const m of ms) for (const n of ns) for (const k of ks) {
          const [tA, tB] = TRANSPOSES[Math.floor(rand() * 4)];
          check(makeCase(rand, m, n, k, tA, tB, rand() < 0.5, rand() < 0.5));
        }
      });

      it('matches the reference on larger products, all transposes, accumulate on and off', () => {
        const rand = mulberry32(5);
        for (const [m, n, k] of [[129, 257, 300], [20, 203, 65], [61, 41, 530]]) {
          for (const [tA, tB] of TRANSPOSES) for (const acc of [false, true]) check(makeCase(rand, m, n, k, tA, tB, acc, true));
        }
      });

      it('adds a bias last, bit for bit the product followed by a float32 add, on every path', () => {
        // Shapes around the tiles and blocks: small m reads B in place, k past KC adds the bias on the last
        // depth block only, n past NC splits the bias across column blocks.
        const rand = mulberry32(8);
        const { rows: MR, cols: NR, kc: KC, nc: NC, smallM } = config;
        const shapes = [[MR, NR, 5], [MR + 1, NR + 3, KC + 1], [smallM, 2 * NR + 1, 2 * KC + 3], [smallM + 2, NC + NR + 1, 9], [2, 7, 0]];
        for (const [m, n, k] of shapes) {
          for (const [tA, tB] of TRANSPOSES) for (const acc of [false, true]) {
            const t = makeCase(rand, m, n, k, tA, tB, acc, true);
            const bias = Float32Array.from({ length: n + 2 }, () => rand() * 2 - 1); // longer than n: the first n are used
            const plain = run(gemm, t, Float32Array);
            for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) plain[t.cOffset + i * t.ldc + j] = Math.fround(plain[t.cOffset + i * t.ldc + j] + bias[j]);
            const c = t.c.slice();
            kernel.gemm(tA, tB, m, n, k, t.a, t.aOffset, t.lda, t.b, t.bOffset, t.ldb, c, t.cOffset, t.ldc, acc, bias);
            expect(Array.from(c)).toEqual(Array.from(plain)); // the padding between rows untouched too
          }
        }
        expect(() => kernel.gemm(false, false, 1, 3, 1, new Float32Array(1), 0, 1, new Float32Array(3), 0, 3, new Float32Array(3), 0, 3, false, new Float32Array(2)))
          .toThrow(/argument 'bias' is too short: the product has 3 columns, the bias 2 values/);
      });

      it('handles empty products: m or n = 0 leaves C alone, k = 0 zeroes it unless accumulating', () => {
        const rand = mulberry32(6);
        for (const [m, n, k] of [[0, 5, 3], [4, 0, 3], [0, 0, 0], [3, 5, 0], [1, 1, 0]]) {
          for (const acc of [false, true]) check(makeCase(rand, m, n, k, false, true, acc, true));
        }
      });
    });
  }

  it('keeps working after its memory grows, and reads operands from SharedArrayBuffers', () => {
    const kernel = createWasmGemm({ relaxed: false })!;
    const gemm = kernel.gemm.bind(kernel) as Gemm;
    const rand = mulberry32(7);
    const shared = (x: Float32Array): Float32Array => {
      const s = new Float32Array(new SharedArrayBuffer(x.byteLength));
      s.set(x);
      return s;
    };
    for (const [m, n, k] of [[3, 4, 5], [300, 310, 320], [7, 9, 11]]) {
      const t = makeCase(rand, m, n, k, true, false, true, true);
      const s = { ...t, a: shared(t.a), b: shared(t.b) };
      expectClose(run(gemm, s, Float32Array), run(gemmReference, t, Float64Array), t, 1e-5);
    }
  });

  it('rejects bad arguments with the same messages as the reference', () => {
    const kernel = createWasmGemm({ relaxed: false })!;
    const x = new Float32Array(6);
    expect(() => kernel.gemm(false, true, 2, 3, 3, x, 0, 3, x, 0, 2, x, 0, 3, false)).toThrow(/WasmGemm.gemm: argument 'ldb'/);
    expect(() => kernel.gemm(false, false, 2, 3, 3, x, 1, 3, new Float32Array(9), 0, 3, x, 0, 3, false)).toThrow(/argument 'a' is too short/);
    const f64 = new Float64Array(9) as unknown as Float32Array;
    expect(() => kernel.gemm(false, false, 2, 3, 3, x, 0, 3, f64, 0, 3, x, 0, 3, false)).toThrow(/argument 'b' must be a Float32Array/);
  });
});
