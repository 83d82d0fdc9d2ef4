// Shared by the GEMM tests (gemm.test.ts, gemm-pinned.test.ts): seeded cases with offsets, padded leading
// dimensions and sentinels around C's view, the definition in float64, and the comparison.
import { expect } from 'vitest';
import type { FloatArray } from '../../src/kernels/gemm-reference.js';
import { PLAIN_CONFIG, RELAXED_CONFIG, relaxedSimdSupported, type WasmGemmConfig } from '../../src/kernels/wasm/index.js';

/** mulberry32: a tiny seeded PRNG, so every failure reproduces. */
export function mulberry32(seed: number): () => number {
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
export interface Case {
  transA: boolean; transB: boolean; m: number; n: number; k: number;
  aOffset: number; lda: number; bOffset: number; ldb: number; cOffset: number; ldc: number;
  accumulate: boolean;
  a: Float32Array; b: Float32Array; c: Float32Array;
}

export const SENTINEL = 1234.5;

export function makeCase(rand: () => number, m: number, n: number, k: number, transA: boolean, transB: boolean, accumulate: boolean, padded: boolean): Case {
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

export type Gemm = (tA: boolean, tB: boolean, m: number, n: number, k: number, a: FloatArray, ao: number, lda: number,
  b: FloatArray, bo: number, ldb: number, c: FloatArray, co: number, ldc: number, acc: boolean) => void;

/** Runs `gemm` on a copy of the case's C (converted to `Ctor`) and returns it. */
export function run(gemm: Gemm, t: Case, Ctor: Float32ArrayConstructor | Float64ArrayConstructor): FloatArray {
  const conv = (x: Float32Array): FloatArray => (Ctor === Float32Array ? x.slice() : Float64Array.from(x));
  const c = conv(t.c);
  gemm(t.transA, t.transB, t.m, t.n, t.k, conv(t.a), t.aOffset, t.lda, conv(t.b), t.bOffset, t.ldb, c, t.cOffset, t.ldc, t.accumulate);
  return c;
}

/** The definition, written as directly as possible, in float64. */
export function naive(t: Case): Float64Array {
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
export function expectClose(got: FloatArray, want: FloatArray, t: Case, relTol: number): void {
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

export const TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;

/**
 * Each wasm build with its shipped blocking and with tiny blocks, so that every block boundary (KC, MC, NC,
 * the small-m switch) is crossed by shapes small enough to test quickly.
 */
export function wasmBuilds(): [string, WasmGemmConfig][] {
  const builds: [string, WasmGemmConfig][] = [
    ['plain 4×8', PLAIN_CONFIG],
    ['plain 4×8, tiny blocks', { ...PLAIN_CONFIG, kc: 7, mc: 10, nc: 24, smallM: 5 }],
  ];
  if (relaxedSimdSupported()) {
    builds.push(['relaxed 3×12', RELAXED_CONFIG]);
    builds.push(['relaxed 3×12, tiny blocks', { ...RELAXED_CONFIG, kc: 5, mc: 9, nc: 36, smallM: 4 }]);
  }
  return builds;
}
