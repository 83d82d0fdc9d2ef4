// The thread heap (kernels/wasm/heap.ts): arrays carved from one shared wasm memory stay valid as it grows,
// a GEMM instance running in the heap reads and writes them in place with exactly the results of a kernel
// that copies, and the storage pool draws its float32 arrays from the heap of the wasm backend's thread.
import { describe, expect, it } from 'vitest';
import { StoragePool, backend, matmul, tensor } from '../src/index.js';
import { WasmHeap, activeHeap } from '../src/kernels/wasm/heap.js';
import { createWasmGemmWithConfig } from '../src/kernels/wasm/index.js';
import { TRANSPOSES, makeCase, mulberry32, wasmBuilds } from './helpers/gemm-cases.js';

describe('WasmHeap', () => {
  it('hands out zeroed, aligned arrays that stay valid while the memory grows', () => {
    const heap = new WasmHeap();
    const first = heap.allocFloat32(1000)!;
    first.fill(3);
    const big = heap.allocFloat32(5_000_000)!; // grows the memory by ~20 MB
    expect(first.every((v) => v === 3)).toBe(true); // the first array's view survived the growth
    expect(big.every((v) => v === 0)).toBe(true);
    for (const a of [first, big]) {
      expect(heap.addressOf(a) % 64).toBe(0);
      expect(heap.addressOf(a)).toBe(a.byteOffset);
    }
    expect(heap.addressOf(big)).toBeGreaterThanOrEqual(heap.addressOf(first) + first.byteLength);
    expect(heap.addressOf(new Float32Array(10))).toBe(-1);
    expect(heap.addressOf(new Float32Array(new SharedArrayBuffer(64)))).toBe(-1); // shared, but not this memory
  });

  it('answers null when its array zone is full (the pool then makes an ordinary array)', () => {
    const heap = new WasmHeap(4096);
    expect(heap.allocFloat32(500)).not.toBeNull();
    expect(heap.allocFloat32(2000)).toBeNull();
  });
});

describe.each(wasmBuilds())('GEMM in a heap, operands in place (%s)', (_name, config) => {
  const heap = new WasmHeap();
  const inHeap = createWasmGemmWithConfig(config, heap);
  const copying = createWasmGemmWithConfig(config);
  const toHeap = (x: Float32Array): Float32Array => {
    const h = heap.allocFloat32(x.length)!;
    h.set(x);
    return h;
  };

  it('gives bit for bit what the copying kernel gives, for every subset of A, B, C in the heap', () => {
    const rand = mulberry32(11);
    const { rows: MR, cols: NR, kc: KC, smallM } = config;
    const shapes = [[MR, NR, 7], [smallM, 3 * NR + 1, KC + 5], [smallM + 3, NR + 2, 2 * KC + 1], [61, 41, 53]];
    for (const [m, n, k] of shapes) {
      for (const [tA, tB] of TRANSPOSES) {
        for (let subset = 0; subset < 8; subset++) {
          const acc = subset % 3 === 0;
          const bias = subset % 2 === 0 ? Float32Array.from({ length: n }, () => rand() - 0.5) : null;
          const t = makeCase(rand, m, n, k, tA, tB, acc, true);
          const expected = t.c.slice();
          copying.gemm(tA, tB, m, n, k, t.a, t.aOffset, t.lda, t.b, t.bOffset, t.ldb, expected, t.cOffset, t.ldc, acc, bias);
          const a = subset & 1 ? toHeap(t.a) : t.a, b = subset & 2 ? toHeap(t.b) : t.b, c = subset & 4 ? toHeap(t.c) : t.c.slice();
          inHeap.gemm(tA, tB, m, n, k, a, t.aOffset, t.lda, b, t.bOffset, t.ldb, c, t.cOffset, t.ldc, acc, bias);
          expect(Array.from(c)).toEqual(Array.from(expected)); // padding between C's rows untouched too
        }
      }
    }
  });

  it('pins work next to in-place products, and the workspace survives operands allocated in between', () => {
    const rand = mulberry32(12);
    const t = makeCase(rand, 5, 2 * config.cols + 3, 40, false, true, false, false);
    const pin = inHeap.pinB(true, 40, t.n, t.b, t.bOffset, t.ldb);
    const a = toHeap(t.a);
    toHeap(new Float32Array(100_000)); // memory grows while the pin is live
    const viaPin = new Float32Array(t.c.length), plain = new Float32Array(t.c.length);
    pin.gemm(false, 5, a, t.aOffset, t.lda, viaPin, t.cOffset, t.ldc, false);
    copying.gemm(false, true, 5, t.n, 40, t.a, t.aOffset, t.lda, t.b, t.bOffset, t.ldb, plain, t.cOffset, t.ldc, false);
    pin.release();
    expect(Array.from(viaPin)).toEqual(Array.from(plain));
  });
});

describe('the storage pool and the wasm backend', () => {
  it("puts float32 arrays in the heap of the thread whose wasm backend claimed it, and products use them in place", () => {
    const be = backend('wasm'); // the first wasm backend of this thread claims the heap
    const heap = activeHeap()!;
    expect(heap).not.toBeNull(); // Node ≥ 16 has shared wasm memories
    const pool = new StoragePool(16);
    const a = tensor(Float32Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i)), [64, 32], { backend: be });
    const b = tensor(Float32Array.from({ length: 32 * 48 }, (_, i) => Math.cos(i)), [32, 48], { backend: be });
    const outside = Array.from(matmul(a, b).data);
    const inside = pool.run(() => {
      const y = matmul(a, b);
      expect(heap.addressOf(y.data as Float32Array)).toBeGreaterThan(0); // C written in the heap
      return Array.from(y.data);
    });
    expect(inside).toEqual(outside);
    // int32 and float64 arrays stay ordinary.
    pool.run(() => {
      const ints = tensor(new Int32Array(64), [64], { dtype: 'int32', backend: be });
      expect(heap.addressOf(ints.add(1).data as unknown as Float32Array)).toBe(-1);
    });
  });
});
