// Gradient sinks: a rule that adds a leaf's gradient straight into its existing .grad (matmul's weight,
// gatherRows' table) must give what the plain path gives (fresh gradient, then added). The plain path runs
// on the first backward (no .grad yet); the second backward, into the now existing .grad, takes the sink.
import { describe, expect, it } from 'vitest';
import { Generator, withoutGradSinks, gatherRows, linear, matmul, mul, setBackend, sum, tensor, type DType, type Tensor } from '../src/index.js';

function random(shape: readonly number[], g: Generator, dtype: DType): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float64Array.from({ length: n }, () => g.uniform(-1, 1)), shape, { dtype }).requireGrad();
}

describe.each(['reference', 'wasm'])('gradient sinks (%s backend)', (backendName) => {
  const cases: { name: string; a: number[]; b: number[]; transA: boolean; transB: boolean }[] = [
    { name: 'a·b', a: [5, 4], b: [4, 3], transA: false, transB: false },
    { name: 'a·bᵀ (a linear layer)', a: [5, 4], b: [3, 4], transA: false, transB: true },
    { name: 'aᵀ·b', a: [4, 5], b: [4, 3], transA: true, transB: false },
    { name: 'aᵀ·bᵀ', a: [4, 5], b: [3, 4], transA: true, transB: true },
    { name: 'batched a·b, b shared', a: [2, 5, 4], b: [4, 3], transA: false, transB: false },
    { name: 'batched a·bᵀ, b shared', a: [2, 5, 4], b: [3, 4], transA: false, transB: true },
    { name: 'batched aᵀ·b (no sink: plain path)', a: [2, 4, 5], b: [4, 3], transA: true, transB: false },
  ];
  for (const dtype of ['float64', 'float32'] as const) {
    it.each(cases)(`matmul ${dtype}: $name`, ({ a: aShape, b: bShape, transA, transB }) => {
      setBackend(backendName);
      const g = new Generator(7);
      const a = random(aShape, g, dtype), b = random(bShape, g, dtype);
      const outShape = matmul(a, b, transA, transB).shape;
      const w = random(outShape, g, dtype); // a loss weighting, so every output has its own gradient
      const loss = (): Tensor => sum(mul(matmul(a, b, transA, transB), w));
      loss().backward();
      const once = { a: Array.from(a.grad!.data), b: Array.from(b.grad!.data) };
      loss().backward(); // b.grad exists now: the sink path
      const tol = dtype === 'float64' ? 1e-12 : 1e-5;
      b.grad!.data.forEach((v, i) => expect(v).toBeCloseTo(2 * once.b[i], -Math.log10(tol)));
      a.grad!.data.forEach((v, i) => expect(v).toBeCloseTo(2 * once.a[i], -Math.log10(tol)));
    });
  }

  it('linear: the weight gradient of x·wᵀ + b sinks too', () => {
    setBackend(backendName);
    const g = new Generator(11);
    const x = random([2, 3, 4], g, 'float64'), w = random([3, 4], g, 'float64'), b = random([3], g, 'float64');
    const r = random([2, 3, 3], g, 'float64');
    const loss = (): Tensor => sum(mul(linear(x, w, b), r));
    loss().backward();
    const once = [x, w, b].map((t) => Array.from(t.grad!.data));
    loss().backward();
    [x, w, b].forEach((t, j) => t.grad!.data.forEach((v, i) => expect(v).toBeCloseTo(2 * once[j][i], 12)));
  });

  it('gatherRows adds the rows of repeated indices into the existing .grad', () => {
    setBackend(backendName);
    const g = new Generator(3);
    const table = random([6, 4], g, 'float32');
    const idx = tensor(Int32Array.from([1, 4, 1, 0, 4, 4]), [6], { dtype: 'int32' });
    const w = random([6, 4], g, 'float32');
    const loss = (): Tensor => sum(mul(gatherRows(table, idx), w));
    loss().backward();
    const once = Array.from(table.grad!.data);
    expect(once.slice(8, 12).every((v) => v === 0)).toBe(true); // row 2 is never gathered
    loss().backward();
    table.grad!.data.forEach((v, i) => expect(v).toBeCloseTo(2 * once[i], 5));
  });

  it('withoutGradSinks: a second backward adds the whole gradient, one float32 addition per element', () => {
    setBackend(backendName);
    const g = new Generator(5);
    const make = () => ({ table: random([6, 8], new Generator(1), 'float32'), w: random([5, 8], new Generator(2), 'float32') });
    const idx = tensor(Int32Array.from([1, 4, 1, 0, 4, 4, 2, 1, 3, 4, 5, 1]), [12], { dtype: 'int32' });
    const r = random([12, 5], g, 'float32');
    const loss = (m: ReturnType<typeof make>): Tensor => sum(mul(linear(gatherRows(m.table, idx), m.w), r));
    const acc = make();
    loss(acc).backward();
    withoutGradSinks(() => loss(acc).backward());
    const fresh = make();
    loss(fresh).backward(); // no .grad before: the plain path, the gradient whole
    for (const k of ['table', 'w'] as const) {
      const expected = Float32Array.from(fresh[k].grad!.data, (v) => Math.fround(v + v));
      expect(Array.from(acc[k].grad!.data)).toEqual(Array.from(expected));
    }
  });
});
