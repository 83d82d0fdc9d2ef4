import { describe, expect, it } from 'vitest';
import { gemmReference, type FloatArray } from '../src/kernels/gemm-reference.js';
import {
  PLAIN_CONFIG, RELAXED_CONFIG, createWasmGemm, createWasmGemmWithConfig, relaxedSimdSupported, wasmSimdSupported,
  type WasmGemm, type WasmGemmConfig,
} from '../src/kernels/wasm/index.js';

/** mulberry32: a tiny seeded PRNG, so every failure reproduces. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One GEMM call's operands, laid out with offsets and padded leading dimensions as a caller might. */
interface Case {
  transA: boolean; transB: boolean; m: number; n: number; k: number;
  aOffset: number; lda: number; bOffset: number; ldb: number; cOffset: number; ldc: number;
  accumulate: boolean;
  a: Float32Array; b: Float32Array; c: Float32Array;
}

const SENTINEL = 1234.5;

function makeCase(rand: () => number, m: number, n: number, k: number, transA: boolean, transB: boolean, accumulate: boolean, padded: boolean): Case {
  const pad = (): number => (padded ? Math.floor(rand() * 5) : 0);
  const [aRows, aCols] = transA ? [k, m] : [m, k];
  const [bRows, bCols] = transB ? [n, k] : [k, n];
  const lda = Math.max(1, aCols + pad()), ldb = Math.max(1, bCols + pad()), ldc = Math.max(1, n + pad());
  const aOffset = pad(), bOffset = pad(), cOffset = pad();
  const fill = (len: number): Float32Array => Float32Array.from({ length: len }, () => rand() * 2 - 1);
  const a = fill(aOffset + aRows * lda + pad());
  const b = fill(bOffset + bRows * ldb + pad());
  // C: random values in the view, a sentinel everywhere else (gaps between rows, before and after).
  const c = new Float32Array(cOffset + m * ldc + pad()).fill(SENTINEL);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c[cOffset + i * ldc + j] = rand() * 2 - 1;
  return { transA, transB, m, n, k, aOffset, lda, bOffset, ldb, cOffset, ldc, accumulate, a, b, c };
}

type Gemm = (tA: boolean, tB: boolean, m: number, n: number, k: number, a: FloatArray, ao: number, lda: number,
  b: FloatArray, bo: number, ldb: number, c: FloatArray, co: number, ldc: number, acc: boolean) => void;

/** Runs `gemm` on a copy of the case's C (converted to `Ctor`) and returns it. */
function run(gemm: Gemm, t: Case, Ctor: Float32ArrayConstructor | Float64ArrayConstructor): FloatArray {
  const conv = (x: Float32Array): FloatArray => (Ctor === Float32Array ? x.slice() : Float64Array.from(x));
  const c = conv(t.c);
  gemm(t.transA, t.transB, t.m, t.n, t.k, conv(t.a), t.aOffset, t.lda, conv(t.b), t.bOffset, t.ldb, c, t.cOffset, t.ldc, t.accumulate);
  return c;
}

/** The definition, written as directly as possible, in float64. */
function naive(t: Case): Float64Array {
  const c = Float64Array.from(t.c);
  const A = (i: number, p: number): number => (t.transA ? t.a[t.aOffset + p * t.lda + i] : t.a[t.aOffset + i * t.lda + p]);
  const B = (p: number, j: number): number => (t.transB ? t.b[t.bOffset + j * t.ldb + p] : t.b[t.bOffset + p * t.ldb + j]);
  for (let i = 0; i < t.m; i++) {
    for (let j = 0; j < t.n; j++) {
      let s = 0;
      for (let p = 0; p < t.k; p++) s += A(i, p) * B(p, j);
      const at = t.cOffset + i * t.ldc + j;
      c[at] = t.accumulate ? c[at] + s : s;
    }
  }
  return c;
}

/**
 * Compares C to the expected C everywhere: inside the view within a float32 tolerance that grows
 * with k (entries of A, B, C are in [-1, 1]), outside it bit-for-bit (gaps must be untouched).
 */
function expectClose(got: FloatArray, want: FloatArray, t: Case, relTol: number): void {
  expect(got.length).toBe(want.length);
  const tol = relTol * (t.k + 1);
  let worst = 0, where = -1;
  const inView = new Uint8Array(got.length);
  for (let i = 0; i < t.m; i++) inView.fill(1, t.cOffset + i * t.ldc, t.cOffset + i * t.ldc + t.n);
  for (let x = 0; x < got.length; x++) {
    const d = inView[x] ? Math.abs(got[x] - want[x]) : got[x] === want[x] ? 0 : Infinity;
    if (!(d <= worst)) { worst = d; where = x; }
  }
  const label = `${t.transA ? 't' : 'n'}${t.transB ? 't' : 'n'} m=${t.m} n=${t.n} k=${t.k} acc=${t.accumulate} lda=${t.lda} ldb=${t.ldb} ldc=${t.ldc} offsets=${t.aOffset},${t.bOffset},${t.cOffset}`;
  expect(worst, `${label}: worst |diff| ${worst} at element ${where}`).toBeLessThanOrEqual(tol);
}

const TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;

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

  // Each build runs with its shipped blocking and with tiny blocks, so that every block boundary
  // (KC, MC, NC, the small-m switch) is crossed by shapes small enough to test quickly.
  const builds: [string, WasmGemmConfig][] = [
    ['plain 4×8', PLAIN_CONFIG],
    ['plain 4×8, tiny blocks', { ...PLAIN_CONFIG, kc: 7, mc: 10, nc: 24, smallM: 5 }],
  ];
  if (relaxedSimdSupported()) {
    builds.push(['relaxed 3×12', RELAXED_CONFIG]);
    builds.push(['relaxed 3×12, tiny blocks', { ...RELAXED_CONFIG, kc: 5, mc: 9, nc: 36, smallM: 4 }]);
  }

  for (const [name, config] of builds) {
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
