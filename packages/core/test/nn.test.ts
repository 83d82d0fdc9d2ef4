// Modules: parameter naming and order, modes, gradients, default initialisation, and the initialisers.
import { describe, expect, it } from 'vitest';
import {
  Embedding, Generator, LoomError, Linear, Module, Parameter, backend, crossEntropy, init, linear, matmul, sum, tensor,
  type Tensor,
} from '../src/index.js';
import * as naive from './helpers/naive.js';

class Block extends Module {
  fc: Linear;
  extra: { scale: Parameter; shift: Parameter };
  _cache: Parameter; // fields starting with '_' are not walked
  constructor(g: Generator) {
    super();
    this.fc = new Linear(3, 3, { generator: g });
    this.extra = { scale: new Parameter([3]), shift: new Parameter([3]) };
    this._cache = new Parameter([100]);
  }
}

class Net extends Module {
  embed: Embedding;
  layers: Block[];
  head: Linear;
  constructor() {
    super();
    const g = new Generator(1);
    this.embed = new Embedding(5, 3, { generator: g });
    this.layers = [new Block(g), new Block(g)];
    this.head = new Linear(3, 5, { generator: g });
    this.head.weight = this.embed.weight; // tied: listed once, under its first name
  }
}

describe('Module', () => {
  it('namedParameters walks fields in definition order with dotted names; tied parameters once', () => {
    const net = new Net();
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      'embed.weight',
      'layers.0.fc.weight', 'layers.0.fc.bias', 'layers.0.extra.scale', 'layers.0.extra.shift',
      'layers.1.fc.weight', 'layers.1.fc.bias', 'layers.1.extra.scale', 'layers.1.extra.shift',
      'head.bias',
    ]);
    expect(net.parameters()[0]).toBe(net.embed.weight);
    expect(net.parameters()).toEqual(net.namedParameters().map(([, p]) => p));
    expect(net.numParameters()).toBe(15 + 2 * (9 + 3 + 3 + 3) + 5);
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'embed', 'layers.0', 'layers.0.fc', 'layers.1', 'layers.1.fc', 'head']);
  });

  it('train() and eval() reach every module below, in arrays too', () => {
    const net = new Net();
    expect(net.namedModules().every(([, m]) => m.training)).toBe(true);
    expect(net.eval()).toBe(net);
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.layers[1].train();
    expect(net.layers[1].fc.training).toBe(true);
    expect(net.layers[0].fc.training).toBe(false);
    net.train();
    expect(net.namedModules().every(([, m]) => m.training)).toBe(true);
  });

  it('zeroGrad clears the gradients that backward filled', () => {
    const net = new Net();
    const x = net.embed.forward(tensor([0, 4, 2], { dtype: 'int32' }));
    let h = x;
    for (const b of net.layers) h = b.fc.forward(h).mul(b.extra.scale).add(b.extra.shift);
    crossEntropy(net.head.forward(h), tensor([1, 2, 3], { dtype: 'int32' })).backward();
    expect(net.parameters().every((p) => p.grad !== null)).toBe(true);
    expect(net.layers[0]._cache.grad).toBeNull();
    net.zeroGrad();
    expect(net.parameters().every((p) => p.grad === null)).toBe(true);
  });
});

describe('Parameter', () => {
  it('is a leaf that requires grad, zero-filled or from values', () => {
    const p = new Parameter([2, 2]);
    expect(p.requiresGrad).toBe(true);
    expect(p.node).toBeNull();
    expect(Array.from(p.data)).toEqual([0, 0, 0, 0]);
    expect(new Parameter([2], { values: [1, 2], dtype: 'float64' }).data).toEqual(new Float64Array([1, 2]));
    expect(() => new Parameter([3], { values: [1, 2] })).toThrow('Parameter: 2 values for shape [3]');
  });
});

describe('layers', () => {
  it('Linear: W [out, in], b [out] ~ U(-1/√in, 1/√in) (PyTorch), seeded; forward is linear()', () => {
    const l = new Linear(64, 200, { generator: new Generator(4) });
    expect(l.weight.shape).toEqual([200, 64]);
    expect(l.bias!.shape).toEqual([200]);
    const bound = 1 / 8;
    for (const p of [l.weight, l.bias!]) {
      const v = Array.from(p.data);
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...v)).toBeGreaterThan(0.95 * bound);
      expect(Math.min(...v)).toBeLessThan(-0.95 * bound);
    }
    // U(-a, a) has std a/√3
    const std = Math.sqrt(Array.from(l.weight.data).reduce((s, v) => s + v * v, 0) / l.weight.size);
    expect(Math.abs(std - bound / Math.sqrt(3))).toBeLessThan(0.002);
    expect(Array.from(new Linear(64, 200, { generator: new Generator(4) }).weight.data)).toEqual(Array.from(l.weight.data));
    const x = tensor(Array.from({ length: 128 }, (_, i) => Math.sin(i)), [2, 64]);
    naive.assertClose(l.forward(x).data, linear(x, l.weight, l.bias).data, 0, 0);
    const nb = new Linear(3, 2, { bias: false });
    expect(nb.bias).toBeNull();
    expect(nb.namedParameters().map(([n]) => n)).toEqual(['weight']);
    expect(new Linear(3, 2, { dtype: 'float64' }).weight.dtype).toBe('float64');
    expect(() => new Linear(0, 2)).toThrow('Linear: inFeatures must be a positive integer, got 0');
  });

  it('Embedding: [V, D] ~ N(0, 1) (PyTorch); forward gathers rows', () => {
    const e = new Embedding(200, 100, { generator: new Generator(5) });
    const v = Array.from(e.weight.data);
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean)).toBeLessThan(4 / Math.sqrt(v.length));
    expect(Math.abs(std - 1)).toBeLessThan(4 / Math.sqrt(2 * v.length));
    const out = e.forward(tensor([[3, 7]], { dtype: 'int32' }));
    expect(out.shape).toEqual([1, 2, 100]);
    expect(Array.from(out.data.subarray(100))).toEqual(v.slice(700, 800));
    expect(() => new Embedding(5, -1)).toThrow('Embedding: embeddingDim must be a positive integer, got -1');
  });
});

describe('init', () => {
  const ref = backend('reference');
  const param = (shape: number[]): Parameter => new Parameter(shape, { dtype: 'float64', backend: ref });
  const absMax = (t: Tensor): number => Math.max(...Array.from(t.data, Math.abs));
  const stdOf = (t: Tensor): number => Math.sqrt(Array.from(t.data).reduce((s, v) => s + v * v, 0) / t.size);

  it('fans follow PyTorch: fanIn = in·receptive, fanOut = out·receptive', () => {
    expect(init.fans([4, 3])).toEqual({ fanIn: 3, fanOut: 4 });
    expect(init.fans([8, 4, 3, 3])).toEqual({ fanIn: 36, fanOut: 72 });
    expect(() => init.fans([4])).toThrow('fans: need at least 2 dimensions, got [4]');
  });

  it('uniform, normal, constant, setValues fill in place and return the tensor', () => {
    const p = param([50, 40]);
    const storage = p.storage;
    expect(init.uniform(p, 2, 3, new Generator(1))).toBe(p);
    expect(p.storage).toBe(storage);
    expect(Math.min(...p.data)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...p.data)).toBeLessThan(3);
    init.normal(p, 1, 0.1, new Generator(2));
    expect(Math.abs(Array.from(p.data).reduce((s, v) => s + v, 0) / p.size - 1)).toBeLessThan(0.01);
    init.constant(p, 0.5);
    expect(new Set(p.data)).toEqual(new Set([0.5]));
    expect(() => init.setValues(p, [1, 2])).toThrow('setValues: 2 values for a tensor of shape [50, 40]');
  });

  it('xavier: uniform bound and normal std √(2/(fanIn+fanOut))·gain', () => {
    const p = param([300, 100]);
    init.xavierUniform(p, 2, new Generator(3));
    const a = 2 * Math.sqrt(6 / 400);
    expect(absMax(p)).toBeLessThanOrEqual(a);
    expect(absMax(p)).toBeGreaterThan(0.99 * a);
    init.xavierNormal(p, 1, new Generator(4));
    expect(Math.abs(stdOf(p) / Math.sqrt(2 / 400) - 1)).toBeLessThan(0.02);
  });

  it('kaimingUniform: bound √(6/((1+a²)·fanIn)); a = √5 gives 1/√fanIn (Linear default)', () => {
    const p = param([200, 150]);
    init.kaimingUniform(p, 0, new Generator(5));
    expect(absMax(p)).toBeLessThanOrEqual(Math.sqrt(6 / 150));
    expect(absMax(p)).toBeGreaterThan(0.99 * Math.sqrt(6 / 150));
    init.kaimingUniform(p, Math.sqrt(5), new Generator(6));
    expect(absMax(p)).toBeLessThanOrEqual(1 / Math.sqrt(150));
    expect(absMax(p)).toBeGreaterThan(0.99 / Math.sqrt(150));
  });

  it('orthogonal: WᵀW = I for tall, W·Wᵀ = I for wide, scaled by gain, higher ranks flattened', () => {
    const identityError = (m: Tensor, scale = 1): number => {
      const n = m.shape[0];
      let e = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) e = Math.max(e, Math.abs(m.data[i * n + j] - (i === j ? scale : 0)));
      return e;
    };
    const tall = init.orthogonal(param([40, 12]), 1, new Generator(7));
    expect(identityError(matmul(tall, tall, true, false))).toBeLessThan(1e-12);
    const wide = init.orthogonal(param([12, 40]), 1, new Generator(8));
    expect(identityError(matmul(wide, wide, false, true))).toBeLessThan(1e-12);
    const square = init.orthogonal(param([16, 16]), 2, new Generator(9));
    expect(identityError(matmul(square, square, true, false), 4)).toBeLessThan(1e-12);
    expect(identityError(matmul(square, square, false, true), 4)).toBeLessThan(1e-12);
    const r3 = init.orthogonal(param([4, 2, 3]), 1, new Generator(10)).reshape([4, 6]);
    expect(identityError(matmul(r3, r3, false, true))).toBeLessThan(1e-12);
    // Not trivially the identity, and seeded.
    expect(absMax(sum(tall, 1))).toBeGreaterThan(0.1);
    expect(Array.from(init.orthogonal(param([40, 12]), 1, new Generator(7)).data)).toEqual(Array.from(tall.data));
    // float32 too, to float32 precision
    const f32 = init.orthogonal(new Parameter([64, 32], { backend: ref }), 1, new Generator(11));
    expect(identityError(matmul(f32, f32, true, false))).toBeLessThan(1e-5);
    expect(() => init.orthogonal(param([4]))).toThrow(LoomError);
  });
});
