import { describe, expect, it } from 'vitest';
import {
  Embedding, Linear, StoragePool, allocArray, crossEntropy, flattenParameters, setBackend, tanh, tensor, Module, Generator,
} from '../src/index.js';

class Tiny extends Module {
  embedding: Embedding;
  hidden: Linear;
  out: Linear;
  constructor(g: Generator) {
    super();
    this.embedding = new Embedding(50, 16, { generator: g });
    this.hidden = new Linear(16, 24, { generator: g });
    this.out = new Linear(24, 50, { generator: g });
  }
  loss(ids: number[], targets: number[]) {
    const x = this.embedding.forward(tensor(Int32Array.from(ids), [ids.length], { dtype: 'int32' }));
    const logits = this.out.forward(tanh(this.hidden.forward(x)));
    return crossEntropy(logits, tensor(Int32Array.from(targets), [targets.length], { dtype: 'int32' }));
  }
}

describe('StoragePool', () => {
  it('hands the arrays of one run out again in the next, zero-filled', () => {
    const pool = new StoragePool(8);
    const first = pool.run(() => {
      const a = allocArray('float32', 100);
      a.fill(7);
      return a;
    });
    const second = pool.run(() => allocArray('float32', 100));
    expect(second).toBe(first);
    expect(Array.from(second).every((v) => v === 0)).toBe(true);
    expect(pool.stats).toEqual({ reused: 1, allocated: 1 });
  });

  it('keys arrays by dtype and length, and leaves small ones and those outside a run alone', () => {
    const pool = new StoragePool(8);
    const [f32, f64, i32, small] = pool.run(() => [allocArray('float32', 64), allocArray('float64', 64), allocArray('int32', 64), allocArray('float32', 4)]);
    const outside = allocArray('float32', 64);
    expect(outside).not.toBe(f32);
    pool.run(() => {
      expect(allocArray('float64', 64)).toBe(f64);
      expect(allocArray('int32', 64)).toBe(i32);
      expect(allocArray('float32', 65)).not.toBe(f32);
      expect(allocArray('float32', 4)).not.toBe(small);
      expect(allocArray('float32', 64)).toBe(f32);
    });
  });

  it('takes its arrays back when the run throws, and refuses to nest', () => {
    const pool = new StoragePool(8);
    let taken: Float32Array | null = null;
    expect(() => pool.run(() => {
      taken = allocArray('float32', 32) as Float32Array;
      throw new Error('boom');
    })).toThrow('boom');
    expect(pool.run(() => allocArray('float32', 32))).toBe(taken);
    expect(() => pool.run(() => pool.run(() => 0))).toThrow(/already active/);
    // The failed nesting left no pool active.
    expect(allocArray('float32', 32)).not.toBe(taken);
  });

  it.each(['reference', 'wasm'])('leaves training steps unchanged, bit for bit (%s)', (backend) => {
    setBackend(backend);
    const steps = (pool: StoragePool | null): Float32Array[] => {
      const model = new Tiny(new Generator(5));
      const flat = flattenParameters(model);
      const seen: Float32Array[] = [];
      for (let s = 0; s < 4; s++) {
        const ids = Array.from({ length: 40 }, (_, i) => (i * 7 + s * 3) % 50);
        const targets = Array.from({ length: 40 }, (_, i) => (i * 11 + s) % 50);
        flat.grads.fill(0);
        const step = () => model.loss(ids, targets).backward();
        if (pool) pool.run(step);
        else step();
        seen.push(flat.grads.slice());
        for (let i = 0; i < flat.values.length; i++) flat.values[i] -= 0.5 * flat.grads[i];
      }
      return seen;
    };
    const pool = new StoragePool(64);
    const plain = steps(null);
    const pooled = steps(pool);
    expect(pool.stats.reused).toBeGreaterThan(0);
    for (let s = 0; s < plain.length; s++) expect(pooled[s]).toEqual(plain[s]);
  });
});

describe('StoragePool and autograd', () => {
  it("allocates a leaf's first .grad outside the pool, so later runs accumulate into it", () => {
    setBackend('wasm');
    const pool = new StoragePool(8);
    const model = new Tiny(new Generator(3));
    pool.run(() => model.loss([1, 2, 3], [4, 5, 6]).backward());
    const first = model.out.weight.grad!.data.slice();
    pool.run(() => model.loss([7, 8, 9], [1, 1, 1]).backward());
    const sum = model.out.weight.grad!.data;
    const alone = new Tiny(new Generator(3));
    alone.loss([7, 8, 9], [1, 1, 1]).backward();
    const second = alone.out.weight.grad!.data;
    for (let i = 0; i < first.length; i++) expect(sum[i]).toBeCloseTo(first[i] + second[i], 6);
  });
});
