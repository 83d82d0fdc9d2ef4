// RNN (tanh, relu), LSTM and GRU against torch.nn.RNN / LSTM / GRU: outputs, final states and the gradients
// of every parameter, the input and the initial state, on 2-layer bidirectional stacks with unsorted
// lengths (PyTorch's packed sequences) and on 1-layer stacks without bias. The reference values come from
// fixtures/recurrent/make_recurrent_fixtures.py (PyTorch 1.13, float64, closed-form weights).
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { getBackend, init, mul, setBackend, sum, tensor, add, type DType, type Tensor } from '@loom/core';
import { RecurrentLayer, type CellKind, type RecurrentState } from '../src/index.js';
import { expectClose } from './models-testkit.js';

interface Values { shape: number[]; values: number[] }
interface Case {
  kind: CellKind; name: string;
  config: { T: number; B: number; inputSize: number; hiddenSize: number; numLayers: number; bidirectional: boolean; bias: boolean };
  lengths: number[] | null; initialState: boolean;
  x: number[]; h0: number[]; c0: number[] | null;
  params: Record<string, Values>;
  lossWeights: { output: number[]; h: number[]; c: number[] | null };
  loss: number;
  output: Values; h_n: Values; c_n: Values | null;
  grads: Record<string, number[]>;
  grad_x: number[]; grad_h0: number[] | null; grad_c0: number[] | null;
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/recurrent/torch-recurrent.json', import.meta.url), 'utf8')) as { cases: Case[] };

function run(c: Case, dtype: DType, implementation: 'composed' | 'fused'): void {
  const { T, B, inputSize, hiddenSize, numLayers, bidirectional, bias } = c.config;
  const model = new RecurrentLayer(c.kind, { inputSize, hiddenSize, numLayers, bidirectional, bias, dtype, implementation });
  // Weights import from PyTorch by name, and namedParameters() lists them in PyTorch's order.
  expect(model.namedParameters().map(([n]) => n)).toEqual(Object.keys(c.params));
  for (const [name, p] of model.namedParameters()) {
    expect(p.shape, name).toEqual(c.params[name].shape);
    init.setValues(p, c.params[name].values);
  }
  const dirs = bidirectional ? 2 : 1;
  const stateShape = [numLayers * dirs, B, hiddenSize];
  const x = tensor(c.x, [T, B, inputSize], { dtype, requiresGrad: true });
  let state: RecurrentState | null = null;
  if (c.initialState) {
    state = { h: tensor(c.h0, stateShape, { dtype, requiresGrad: true }) };
    if (c.c0) state.c = tensor(c.c0, stateShape, { dtype, requiresGrad: true });
  }
  const { output, state: final } = model.forward(x, state, { lengths: c.lengths });
  const tol = dtype === 'float64' ? 1e-10 : 1e-5;
  expect(output.shape).toEqual(c.output.shape);
  expectClose(output.data, c.output.values, tol, 'output');
  expect(final.h.shape).toEqual(c.h_n.shape);
  expectClose(final.h.data, c.h_n.values, tol, 'h_n');
  if (c.c_n) expectClose(final.c!.data, c.c_n.values, tol, 'c_n');
  else expect(final.c).toBeUndefined();

  const w = (v: number[], shape: readonly number[]): Tensor => tensor(v, [...shape], { dtype });
  let loss = add(sum(mul(output, w(c.lossWeights.output, output.shape))), sum(mul(final.h, w(c.lossWeights.h, final.h.shape))));
  if (c.lossWeights.c) loss = add(loss, sum(mul(final.c!, w(c.lossWeights.c, final.c!.shape))));
  expect(Math.abs(loss.item() - c.loss)).toBeLessThanOrEqual(dtype === 'float64' ? 1e-9 : 1e-4);
  loss.backward();
  for (const [name, p] of model.namedParameters()) expectClose(p.grad!.data, c.grads[name], tol, `grad ${name}`);
  expectClose(x.grad!.data, c.grad_x, tol, 'grad x');
  if (state) {
    expectClose(state.h.grad!.data, c.grad_h0!, tol, 'grad h0');
    if (state.c) expectClose(state.c.grad!.data, c.grad_c0!, tol, 'grad c0');
  }
}

const initialBackend = getBackend();
afterEach(() => void setBackend(initialBackend));

describe.each(['composed', 'fused'] as const)('%s recurrent layers match PyTorch', (implementation) => {
  it.each(fixture.cases.map((c) => [`${c.kind} ${c.name}`, c] as const))('%s, float64 (reference backend)', (_n, c) => {
    setBackend('reference');
    run(c, 'float64', implementation);
  });
  it.each(fixture.cases.map((c) => [`${c.kind} ${c.name}`, c] as const))('%s, float32 (default backend)', (_n, c) => {
    run(c, 'float32', implementation);
  });
});
