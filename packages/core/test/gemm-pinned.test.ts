// Products against a pinned right operand (WasmGemm.pinB, pinReference): the fused recurrent kernels' per-step
// h·W_hhᵀ and dG·W_hh. Each pinned product is checked against gemmReference on the same operands, with C's
// gaps and surroundings compared bit for bit (helpers/gemm-cases.ts).
import { describe, expect, it } from 'vitest';
import { gemmReference, pinReference, type FloatArray, type PinnedGemm } from '../src/kernels/gemm-reference.js';
import { PLAIN_CONFIG, createWasmGemm, createWasmGemmWithConfig, type WasmGemm } from '../src/kernels/wasm/index.js';
import { TRANSPOSES, expectClose, makeCase, mulberry32, run, wasmBuilds, type Case, type Gemm } from './helpers/gemm-cases.js';

type Pin = (transB: boolean, k: number, n: number, b: FloatArray, bOffset: number, ldb: number) => PinnedGemm;
type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

/** C after the case's product through a pin of its B (B, A and C converted to `Ctor`). */
function runPinned(pinned: PinnedGemm, t: Case, Ctor: Ctor): FloatArray {
  const conv = (x: Float32Array): FloatArray => (Ctor === Float32Array ? x.slice() : Float64Array.from(x));
  const c = conv(t.c);
  pinned.gemm(t.transA, t.m, conv(t.a), t.aOffset, t.lda, c, t.cOffset, t.ldc, t.accumulate);
  return c;
}

/**
 * Pins the B of `first` and runs `products` cases against it (same B, op(B) k×n; their own A, C, m, transA,
 * accumulate and padding), each compared with gemmReference. Returns the (released) handle.
 */
function checkPinned(pin: Pin, Ctor: Ctor, rand: () => number, transB: boolean, k: number, n: number, ms: readonly number[], relTol: number): PinnedGemm {
  const base = makeCase(rand, 1, n, k, false, transB, false, rand() < 0.6);
  const conv = (x: Float32Array): FloatArray => (Ctor === Float32Array ? x.slice() : Float64Array.from(x));
  const pinned = pin(transB, k, n, conv(base.b), base.bOffset, base.ldb);
  expect([pinned.transB, pinned.k, pinned.n, pinned.released]).toEqual([transB, k, n, false]);
  for (const m of ms) {
    const other = makeCase(rand, m, n, k, rand() < 0.5, transB, rand() < 0.5, rand() < 0.6);
    const t: Case = { ...other, b: base.b, bOffset: base.bOffset, ldb: base.ldb };
    expectClose(runPinned(pinned, t, Ctor), run(gemmReference, t, Float64Array), t, relTol);
  }
  pinned.release();
  expect(pinned.released).toBe(true);
  return pinned;
}

describe('WasmGemm.pinB', () => {
  // Plus column blocks that do not end on a panel edge (a pinned B's are rounded down to whole panels).
  const builds = [...wasmBuilds(), ['plain 4×8, tiny blocks, NC = 30', { ...PLAIN_CONFIG, kc: 7, mc: 10, nc: 30, smallM: 5 }] as const];
  for (const [name, config] of builds) {
    describe(name, () => {
      const kernel: WasmGemm = createWasmGemmWithConfig(config);
      const pin: Pin = (tB, k, n, b, bo, ldb) => kernel.pinB(tB, k, n, b as Float32Array, bo, ldb);

      it('matches the reference on random shapes in 0..70, both transposes, several products per pin', () => {
        const rand = mulberry32(11);
        for (let trial = 0; trial < 60; trial++) {
          const [k, n] = [0, 0].map(() => Math.floor(rand() * 71));
          const ms = [0, 0, 0].map(() => Math.floor(rand() * 71));
          checkPinned(pin, Float32Array, rand, trial % 2 === 1, k, n, ms, 1e-5);
        }
      });

      it('matches the reference around tile and block edges', () => {
        const rand = mulberry32(12);
        const { rows: MR, cols: NR, kc: KC, mc: MC, nc: NC, smallM } = config;
        const ms = [1, MR + 1, smallM, smallM + 1, MC + 1];
        for (const n of [1, NR - 1, NR, NR + 1, 3 * NR + 5]) {
          for (const k of [1, KC - 1, KC + 1, 2 * KC + 1]) checkPinned(pin, Float32Array, rand, rand() < 0.5, k, n, ms, 1e-5);
        }
        // Column blocks (NC, rounded down to whole panels for a pinned B): a shallow k keeps the shipped NC quick.
        for (const n of [NC - 1, NC + 1, 2 * NC + 3]) checkPinned(pin, Float32Array, rand, rand() < 0.5, Math.min(KC + 1, 9), n, [1, MR + 1], 1e-5);
      });

      it('matches the reference on the recurrent shapes, forward (Bᵀ) and backward (B)', () => {
        const rand = mulberry32(13);
        checkPinned(pin, Float32Array, rand, true, 200, 800, [20, 20, 32], 1e-5); // h·W_hhᵀ, H = 200
        checkPinned(pin, Float32Array, rand, false, 800, 200, [20, 20, 130], 1e-5); // dG·W_hh
        checkPinned(pin, Float32Array, rand, true, 300, 137, [3, 129], 1e-5);
      });
    });
  }

  it('reads the copy made when pinning, not the caller\'s B (so B is copied once, not per product)', () => {
    const kernel = createWasmGemm()!;
    const rand = mulberry32(14);
    for (const transB of [false, true]) {
      const t = makeCase(rand, 20, 48, 40, false, transB, false, true);
      const want = run(gemmReference, t, Float64Array);
      const b = t.b.slice();
      const pinned = kernel.pinB(transB, t.k, t.n, b, t.bOffset, t.ldb);
      b.fill(99); // the contract forbids this; done here only to show where the products read from
      expectClose(runPinned(pinned, t, Float32Array), want, t, 1e-5);
      pinned.release();
    }
  });

  it('keeps several pins apart, across plain products and memory growth, and out-of-order releases', () => {
    const kernel = createWasmGemm({ relaxed: false })!;
    const rand = mulberry32(15);
    const shapes = [[7, 33, 21, false], [20, 800, 200, true], [5, 65, 130, false]] as const;
    const pins = shapes.map(([m, n, k, transB]) => {
      const t = makeCase(rand, m, n, k, false, transB, false, true);
      return { t, want: run(gemmReference, t, Float64Array), pinned: kernel.pinB(transB, k, n, t.b, t.bOffset, t.ldb) };
    });
    const checkAll = (): void => {
      for (const p of pins) if (!p.pinned.released) expectClose(runPinned(p.pinned, p.t, Float32Array), p.want, p.t, 1e-5);
    };
    checkAll();
    // A plain product large enough to grow the memory (its operands go above the pins).
    const big = makeCase(rand, 300, 310, 320, true, false, true, true);
    expectClose(run(kernel.gemm.bind(kernel) as Gemm, big, Float32Array), run(gemmReference, big, Float64Array), big, 1e-5);
    checkAll();
    pins[1].pinned.release(); // a hole under a live pin
    checkAll();
    const t = makeCase(rand, 9, 50, 60, true, true, true, true);
    const later = kernel.pinB(true, 60, 50, t.b, t.bOffset, t.ldb);
    expectClose(runPinned(later, t, Float32Array), run(gemmReference, t, Float64Array), t, 1e-5);
    checkAll();
    later.release();
    pins[0].pinned.release();
    pins[2].pinned.release();
  });

  it('gives the memory back: pinning and releasing repeatedly does not move the pins upwards', () => {
    const kernel = createWasmGemm()!;
    const b = new Float32Array(800 * 200).fill(0.5);
    // arenaEnd (private) is where each call's regions start: back at its start once every pin is released.
    const arenaEnd = (): number => (kernel as unknown as { arenaEnd: number }).arenaEnd;
    const start = arenaEnd();
    for (let i = 0; i < 5; i++) {
      const p = kernel.pinB(false, 800, 200, b, 0, 200);
      const q = kernel.pinB(true, 200, 800, b, 0, 200);
      expect(arenaEnd()).toBeGreaterThan(start);
      p.release(); // under q: a hole until q goes
      expect(arenaEnd()).toBeGreaterThan(start);
      q.release();
      expect(arenaEnd()).toBe(start);
    }
  });

  it('throws from every method of a released handle', () => {
    const kernel = createWasmGemm()!;
    const b = new Float32Array(12), a = new Float32Array(6), c = new Float32Array(8);
    const pinned = kernel.pinB(false, 3, 4, b, 0, 4);
    pinned.gemm(false, 2, a, 0, 3, c, 0, 4, false);
    pinned.release();
    expect(() => pinned.gemm(false, 2, a, 0, 3, c, 0, 4, false)).toThrow(/PinnedGemm.gemm: this pinned operand \(op\(B\) 3×4\) was released/);
    expect(() => pinned.release()).toThrow(/PinnedGemm.release: .* was released/);
  });

  it('rejects bad arguments, naming them', () => {
    const kernel = createWasmGemm()!;
    const x = new Float32Array(12);
    expect(() => kernel.pinB(false, 3, 4, x, 0, 3)).toThrow(/WasmGemm.pinB: argument 'ldb' must be an integer ≥ 4/);
    expect(() => kernel.pinB(true, 3, 4, x, 1, 3)).toThrow(/WasmGemm.pinB: argument 'b' is too short/);
    expect(() => kernel.pinB(false, -1, 4, x, 0, 4)).toThrow(/WasmGemm.pinB: argument 'k'/);
    expect(() => kernel.pinB(false, 3, 4, new Float64Array(12) as unknown as Float32Array, 0, 4)).toThrow(/argument 'b' must be a Float32Array/);
    const pinned = kernel.pinB(false, 3, 4, x, 0, 4);
    expect(() => pinned.gemm(false, 2, x, 0, 2, x, 0, 4, false)).toThrow(/PinnedGemm.gemm: argument 'lda' must be an integer ≥ 3/);
    expect(() => pinned.gemm(false, 2, x, 0, 3, x, 5, 4, false)).toThrow(/PinnedGemm.gemm: argument 'c' is too short/);
    expect(() => pinned.gemm(false, 2, x, 0, 3, new Float64Array(8) as unknown as Float32Array, 0, 4, false)).toThrow(/argument 'c' must be a Float32Array/);
    pinned.release();
  });
});

describe('pinReference', () => {
  it('matches gemmReference in float64 and float32, both transposes, several products per pin', () => {
    const rand = mulberry32(21);
    for (let trial = 0; trial < 40; trial++) {
      const [k, n] = [0, 0].map(() => Math.floor(rand() * 30));
      const ms = [0, 0].map(() => Math.floor(rand() * 30));
      checkPinned(pinReference, Float64Array, rand, trial % 2 === 1, k, n, ms, 1e-14);
      checkPinned(pinReference, Float32Array, rand, trial % 2 === 0, k, n, ms, 1e-6);
    }
  });

  it('throws from a released handle and checks its arguments', () => {
    const b = new Float64Array(12);
    const pinned = pinReference(true, 3, 4, b, 0, 3);
    pinned.release();
    expect(() => pinned.gemm(false, 1, b, 0, 3, b, 0, 4, false)).toThrow(/PinnedGemm.gemm: .* was released/);
    expect(() => pinned.release()).toThrow(/was released/);
    expect(() => pinReference(true, 3, 4, b, 1, 3)).toThrow(/pinReference: argument 'b' is too short/);
  });
});

describe('both pins agree with their plain kernels', () => {
  it('wasm pinned products equal the same wasm build\'s plain gemm to float32 rounding', () => {
    const kernel = createWasmGemm()!;
    const rand = mulberry32(31);
    for (const [tA, tB] of TRANSPOSES) {
      const t = makeCase(rand, 20, 200, 64, tA, tB, true, true);
      const pinned = kernel.pinB(tB, t.k, t.n, t.b, t.bOffset, t.ldb);
      expectClose(runPinned(pinned, t, Float32Array), run(kernel.gemm.bind(kernel) as Gemm, t, Float32Array), t, 1e-6);
      pinned.release();
    }
  });
});
