// The fused recurrent primitive on TF.js ops (src/recurrent.ts) against the reference backend's host
// kernels: outputs, final states and the gradients of every input, for every cell kind, both directions,
// with and without biases and with packed-sequence lengths. float32 both sides; the reference kernels use
// Eigen's rational tanh/sigmoid (2.6e-7 abs error), TF.js its own: hence 1e-5.
import { describe, expect, it } from 'vitest';
import { RECURRENT_KINDS, backend, fromFunction, Generator, recurrentSequence, tensor, type Backend, type RecurrentKind, type Tensor } from '@loom/core';
import { tfjsBackend } from '../src/index.js';

const reference = backend('reference');
const cpu = tfjsBackend('tfjs-cpu');

function run(be: Backend, kind: RecurrentKind, seed: number, opts: { reverse: boolean; lengths: number[] | null; bias: boolean }) {
  const [T, B, H] = [4, 3, 5];
  const G = kind === 'lstm' ? 4 : kind === 'gru' ? 3 : 1;
  const g = new Generator(seed);
  const make = (shape: number[], scale = 1): Tensor => fromFunction(shape, () => g.normal() * scale, { backend: be }).requireGrad();
  const xp = make([T, B, G * H]), wHh = make([G * H, H], 0.5);
  const bIh = opts.bias ? make([G * H]) : null, bHh = opts.bias ? make([G * H]) : null;
  const h0 = make([B, H]), c0 = kind === 'lstm' ? make([B, H]) : null;
  const r = recurrentSequence(kind, { xp, wHh, bIh, bHh, h0, c0 }, { reverse: opts.reverse, lengths: opts.lengths });
  // A loss that weighs every output and final state differently, so every gradient path is exercised.
  const w = (t: Tensor): Tensor => fromFunction(t.shape, () => g.normal(), { backend: be });
  let loss = r.output.mul(w(r.output)).sum().add(r.h.mul(w(r.h)).sum());
  if (r.c) loss = loss.add(r.c.mul(w(r.c)).sum());
  loss.backward();
  const inputs = { xp, wHh, bIh, bHh, h0, c0 };
  const grads = Object.fromEntries(Object.entries(inputs).filter(([, t]) => t).map(([k, t]) => [k, Array.from(t!.grad!.data)]));
  return { output: Array.from(r.output.data), h: Array.from(r.h.data), c: r.c ? Array.from(r.c.data) : null, grads };
}

function expectClose(actual: unknown, expected: unknown, path: string): void {
  if (Array.isArray(expected)) {
    expect((actual as number[]).length, path).toBe(expected.length);
    expected.forEach((e: number, i) => {
      const a = (actual as number[])[i];
      if (Math.abs(a - e) > 1e-5 + 1e-5 * Math.abs(e)) expect.fail(`${path}[${i}]: ${a} vs reference ${e}`);
    });
  } else if (expected && typeof expected === 'object') {
    expect(Object.keys(actual as object).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expectClose((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
  } else expect(actual, path).toBe(expected);
}

describe.each(RECURRENT_KINDS)('recurrentSequence %s on tfjs-cpu', (kind) => {
  const cases: [string, { reverse: boolean; lengths: number[] | null; bias: boolean }][] = [
    ['forward', { reverse: false, lengths: null, bias: true }],
    ['reverse', { reverse: true, lengths: null, bias: true }],
    ['lengths', { reverse: false, lengths: [4, 1, 2], bias: true }],
    ['reverse, lengths, no bias', { reverse: true, lengths: [2, 4, 0], bias: false }],
  ];
  it.each(cases)('%s: outputs, states and every gradient match the reference backend', (_name, opts) => {
    expectClose(run(cpu, kind, 7, opts), run(reference, kind, 7, opts), kind);
  });
});

it('the saved values are freed by the backward; a forward without grad saves nothing', () => {
  const tf = cpu.tfjs;
  const xp = tensor(new Float32Array(2 * 1 * 8).fill(0.1), [2, 1, 8], { backend: cpu });
  const wHh = tensor(new Float32Array(8 * 2).fill(0.2), [8, 2], { backend: cpu });
  const h0 = tensor([0, 0], [1, 2], { backend: cpu }), c0 = tensor([0, 0], [1, 2], { backend: cpu });
  const before = tf.memory().numTensors;
  recurrentSequence('lstm', { xp, wHh, h0, c0 });
  expect(tf.memory().numTensors - before).toBe(1 + 3); // y and its three slices: output, h, c
});
