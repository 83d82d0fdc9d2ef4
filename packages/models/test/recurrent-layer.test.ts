// Behaviour of the recurrent layers beyond the PyTorch fixtures: names, initialisation, state carry-over,
// lengths, dropout between layers, and the error messages.
import { describe, expect, it } from 'vitest';
import { Generator, ShapeError, LoomError, fromFunction, slice, reshape, type Tensor } from '@loom/core';
import { GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell, RecurrentLayer, CELL_KINDS, type CellKind } from '../src/index.js';

function randn(shape: number[], seed: number): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => g.normal());
}

function maxDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

describe('parameters', () => {
  it('are named and ordered as PyTorch: per layer, per direction, w_ih, w_hh, b_ih, b_hh', () => {
    const lstm = new LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true });
    expect(lstm.namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`)).toEqual([
      'weight_ih_l0 16x3', 'weight_hh_l0 16x4', 'bias_ih_l0 16', 'bias_hh_l0 16',
      'weight_ih_l0_reverse 16x3', 'weight_hh_l0_reverse 16x4', 'bias_ih_l0_reverse 16', 'bias_hh_l0_reverse 16',
      'weight_ih_l1 16x8', 'weight_hh_l1 16x4', 'bias_ih_l1 16', 'bias_hh_l1 16',
      'weight_ih_l1_reverse 16x8', 'weight_hh_l1_reverse 16x4', 'bias_ih_l1_reverse 16', 'bias_hh_l1_reverse 16',
    ]);
    expect(new GRU({ inputSize: 2, hiddenSize: 5, bias: false }).namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`))
      .toEqual(['weight_ih_l0 15x2', 'weight_hh_l0 15x5']);
    expect(new RNNCell(2, 3).namedParameters().map(([n]) => n)).toEqual(['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']);
  });

  it('are initialised U(-1/√H, 1/√H) from the generator', () => {
    const H = 16;
    const make = (seed: number): RecurrentLayer => new GRU({ inputSize: 5, hiddenSize: H, numLayers: 2, generator: new Generator(seed) });
    const a = make(1), b = make(1), c = make(2);
    const bound = 1 / Math.sqrt(H);
    for (const [name, p] of a.namedParameters()) {
      const v = Array.from(p.data);
      expect(Math.max(...v.map(Math.abs)), name).toBeLessThanOrEqual(bound);
      // Spread over the range, not a constant: the sample's extremes come near ±bound.
      expect(Math.max(...v), name).toBeGreaterThan(0.8 * bound);
      expect(Math.min(...v), name).toBeLessThan(-0.8 * bound);
    }
    expect(a.namedParameters().map(([, p]) => Array.from(p.data))).toEqual(b.namedParameters().map(([, p]) => Array.from(p.data)));
    expect(Array.from(c.parameters()[0].data)).not.toEqual(Array.from(a.parameters()[0].data));
  });
});

describe('forward', () => {
  it.each(CELL_KINDS.map((k) => [k]))('%s: shapes, zero state by default, state carried across windows', (kind: CellKind) => {
    const T = 6, B = 2, D = 3, H = 4, L = 2;
    const layer = new RecurrentLayer(kind, { inputSize: D, hiddenSize: H, numLayers: L, generator: new Generator(3) });
    const x = randn([T, B, D], 4);
    const whole = layer.forward(x);
    expect(whole.output.shape).toEqual([T, B, H]);
    expect(whole.state.h.shape).toEqual([L, B, H]);
    expect(whole.state.c?.shape).toEqual(kind === 'lstm' ? [L, B, H] : undefined);
    expect(maxDiff(layer.forward(x, layer.zeroState(B)).output, whole.output)).toBe(0);
    // Two windows of 3 with the state carried (the coordinator's truncated BPTT) give the same values.
    const first = layer.forward(slice(x, [0, 0, 0], [3, B, D]));
    const second = layer.forward(slice(x, [3, 0, 0], [6, B, D]), first.state);
    expect(maxDiff(second.output, slice(whole.output, [3, 0, 0], [6, B, H]))).toBeLessThan(1e-6);
    expect(maxDiff(second.state.h, whole.state.h)).toBeLessThan(1e-6);
  });

  it.each(CELL_KINDS.map((k) => [k]))('%s: an entry with a length runs as if alone and truncated (both directions)', (kind: CellKind) => {
    const T = 5, B = 3, D = 2, H = 3;
    for (const implementation of ['composed', 'fused'] as const) {
      const layer = new RecurrentLayer(kind, { inputSize: D, hiddenSize: H, bidirectional: true, generator: new Generator(5), implementation });
      const x = randn([T, B, D], 6);
      const lengths = [5, 2, 0];
      const r = layer.forward(x, null, { lengths });
      for (let b = 0; b < B; b++) {
        const n = lengths[b];
        const own = n > 0 ? layer.forward(slice(x, [0, b, 0], [n, b + 1, D])) : null;
        const out = slice(r.output, [0, b, 0], [T, b + 1, 2 * H]);
        if (own) {
          expect(maxDiff(slice(out, [0, 0, 0], [n, 1, 2 * H]), own.output), `${implementation} entry ${b}`).toBeLessThan(1e-6);
          expect(maxDiff(slice(r.state.h, [0, b, 0], [2, b + 1, H]), own.state.h)).toBeLessThan(1e-6);
        } else {
          expect(Array.from(slice(r.state.h, [0, b, 0], [2, b + 1, H]).data)).toEqual(new Array(2 * H).fill(0));
        }
        expect(Array.from(slice(out, [n, 0, 0], [T, 1, 2 * H]).data)).toEqual(new Array((T - n) * 2 * H).fill(0));
      }
    }
  });

  it('the cell modules are one step of the layer', () => {
    const B = 2, D = 3, H = 4;
    const layer = new LSTM({ inputSize: D, hiddenSize: H, generator: new Generator(7) });
    const cell = new LSTMCell(D, H);
    cell.weight_ih = layer.weights(0, 0).weightIh as typeof cell.weight_ih;
    cell.weight_hh = layer.weights(0, 0).weightHh as typeof cell.weight_hh;
    cell.bias_ih = layer.weights(0, 0).biasIh as typeof cell.bias_ih;
    cell.bias_hh = layer.weights(0, 0).biasHh as typeof cell.bias_hh;
    const x = randn([1, B, D], 8);
    const s = cell.forward(reshape(x, [B, D]));
    const r = layer.forward(x);
    expect(maxDiff(reshape(s.h, [1, B, H]), r.state.h)).toBeLessThan(1e-6);
    expect(maxDiff(reshape(s.c!, [1, B, H]), r.state.c!)).toBeLessThan(1e-6);
    expect(new GRUCell(D, H).forward(reshape(x, [B, D])).h.shape).toEqual([B, H]);
  });
});

describe('dropout between layers', () => {
  const x = randn([4, 3, 5], 10);
  it('is not applied after the last layer, nor in evaluation mode', () => {
    const one = new LSTM({ inputSize: 5, hiddenSize: 6, dropout: 0.5, generator: new Generator(1) });
    const train = one.forward(x).output;
    expect(maxDiff(one.eval().forward(x).output, train)).toBe(0);
    const two = new LSTM({ inputSize: 5, hiddenSize: 6, numLayers: 2, dropout: 0.5, generator: new Generator(1) });
    const evalOut = two.eval().forward(x).output;
    expect(maxDiff(two.eval().forward(x).output, evalOut)).toBe(0);
    two.train();
    const a = two.forward(x).output, b = two.forward(x).output;
    expect(maxDiff(a, evalOut)).toBeGreaterThan(1e-3); // masks are drawn in training mode...
    expect(maxDiff(a, b)).toBeGreaterThan(1e-3); // ...fresh for every forward
  });

  it('draws its masks from the generator (reproducible)', () => {
    const make = (): RecurrentLayer => new GRU({ inputSize: 5, hiddenSize: 6, numLayers: 3, dropout: 0.3, generator: new Generator(42) });
    expect(maxDiff(make().forward(x).output, make().forward(x).output)).toBe(0);
  });
});

describe('errors name the function, the argument and what was expected', () => {
  const lstm = new LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2 });
  it('options', () => {
    expect(() => new LSTM({ inputSize: 0, hiddenSize: 4 })).toThrow(/LSTM: options.inputSize must be a positive integer, got 0/);
    expect(() => new GRU({ inputSize: 3, hiddenSize: 4, dropout: 1 })).toThrow(/GRU: options.dropout must be a number in \[0, 1\)/);
    expect(() => new RNN({ inputSize: 3, hiddenSize: 4, nonlinearity: 'sigmoid' as 'tanh' })).toThrow(/RNN: options.nonlinearity must be 'tanh' or 'relu'/);
    expect(() => new LSTM({ inputSize: 3, hiddenSize: 4, bidirectional: 1 as unknown as boolean })).toThrow(/options.bidirectional must be a boolean/);
    expect(() => new LSTM({ inputSize: 3, hiddenSize: 4, implementation: 'fast' as 'fused' })).toThrow(LoomError);
  });
  it('shapes', () => {
    expect(() => lstm.forward(randn([5, 2, 4], 1))).toThrow(ShapeError);
    expect(() => lstm.forward(randn([5, 2, 4], 1))).toThrow(/LSTM.forward: 'x' must be \[T, B, D\] with D = 3 \(inputSize\), got \[5, 2, 4\]/);
    expect(() => lstm.forward(randn([5, 2, 3], 1), { h: randn([2, 2, 4], 2) })).toThrow(/'state.c' must be \[2, 2, 4\]/);
    expect(() => lstm.forward(randn([5, 2, 3], 1), { h: randn([1, 2, 4], 2), c: randn([2, 2, 4], 3) })).toThrow(/'state.h' must be \[2, 2, 4\] \(\[L·dirs, B, H\]\), got \[1, 2, 4\]/);
    expect(() => lstm.forward(randn([5, 2, 3], 1), null, { lengths: [5] })).toThrow(/opts.lengths has 1 entries, the batch has 2/);
    expect(() => lstm.forward(randn([5, 2, 3], 1), null, { lengths: [5, 6] })).toThrow(/opts.lengths\[1\] must be an integer in \[0, 5\]/);
    expect(() => new GRU({ inputSize: 3, hiddenSize: 4 }).forward(randn([5, 2, 3], 1), { h: randn([1, 2, 4], 2), c: randn([1, 2, 4], 2) })).toThrow(/'state.c' is only for LSTM/);
  });
});
