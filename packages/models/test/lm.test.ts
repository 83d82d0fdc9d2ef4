import { describe, expect, it } from 'vitest';
import { Adam, Generator, noGrad, tensor } from '@loom/core';
import { RNNLanguageModel, detachState, sample, type LanguageModelConfig, type RecurrentState } from '../src/index.js';
import { gradcheckModule, ids, randomInts } from './models-testkit.js';

const small = (over: Partial<LanguageModelConfig> = {}): LanguageModelConfig => ({
  vocabSize: 7, embedSize: 4, hiddenSize: 4, numLayers: 2, cell: 'lstm', seed: 3, ...over,
});

describe('RNNLanguageModel: gradients (float64, central differences)', () => {
  const cases: [string, Partial<LanguageModelConfig>][] = [
    ['2-layer LSTM, tied, with dropout', { tieWeights: true, dropout: 0.3 }],
    ['2-layer GRU, untied, embed ≠ hidden', { cell: 'gru', embedSize: 3, hiddenSize: 5 }],
    ['1-layer tanh RNN', { cell: 'rnn_tanh', numLayers: 1 }],
    ['2-layer relu RNN with dropout', { cell: 'rnn_relu', dropout: 0.25, embedSize: 5 }],
  ];
  for (const [name, over] of cases) {
    it(name, () => {
      const m = new RNNLanguageModel(small({ ...over, dtype: 'float64' }));
      const g = new Generator(1);
      const T = 3, B = 2;
      const x = ids(randomInts(g, T * B, 7), T, B), y = ids(randomInts(g, T * B, 7), T, B);
      // A non-zero carried state, as in the second window of truncated BPTT (detached: no gradient into it).
      const carried = detachState(noGrad(() => m.loss(y, x).state));
      const n = gradcheckModule(m, () => m.loss(x, y, carried).loss, { generators: [m.generator] });
      expect(n).toBe(m.numParameters());
    });
  }
});

describe('RNNLanguageModel: configuration and initialisation', () => {
  it('rejects a tied model whose embedding and hidden sizes differ, naming the key', () => {
    expect(() => new RNNLanguageModel(small({ tieWeights: true, embedSize: 3 }))).toThrow(/tieWeights needs embedSize === hiddenSize.*3.*4/);
  });
  it('names the bad key', () => {
    expect(() => new RNNLanguageModel(small({ cell: 'transformer' as never }))).toThrow(/config\.cell must be one of/);
    expect(() => new RNNLanguageModel(small({ dropout: 1 }))).toThrow(/config\.dropout must be a number in \[0, 1\)/);
    expect(() => new RNNLanguageModel(small({ numLayers: 0 }))).toThrow(/config\.numLayers must be a positive integer/);
    expect(() => new RNNLanguageModel(small({ vocabSize: 2.5 }))).toThrow(/config\.vocabSize/);
  });
  it('initialises as word_language_model: embedding and decoder in ±0.1, decoder bias 0, loss near ln V', () => {
    const V = 50;
    const m = new RNNLanguageModel({ vocabSize: V, embedSize: 16, hiddenSize: 16, numLayers: 2, cell: 'lstm' });
    for (const t of [m.embedding.weight, m.decoder.weight]) {
      const d = Array.from(t.data);
      expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(0.1);
      expect(Math.max(...d) - Math.min(...d)).toBeGreaterThan(0.15); // spread over the range, not constant
    }
    expect(Array.from(m.decoder.bias!.data).every((v) => v === 0)).toBe(true);
    const g = new Generator(5);
    const x = ids(randomInts(g, 40, V), 10, 4);
    const loss = noGrad(() => m.loss(x, x).loss.item());
    expect(Math.abs(loss - Math.log(V))).toBeLessThan(0.05);
  });
  it('is reproducible from its seed', () => {
    const a = new RNNLanguageModel(small({ seed: 11 })), b = new RNNLanguageModel(small({ seed: 11 })), c = new RNNLanguageModel(small({ seed: 12 }));
    expect(Array.from(a.rnn.parameters()[0].data)).toEqual(Array.from(b.rnn.parameters()[0].data));
    expect(Array.from(a.embedding.weight.data)).not.toEqual(Array.from(c.embedding.weight.data));
  });
  it('ties the projection to the embedding: one parameter, listed once', () => {
    const m = new RNNLanguageModel(small({ tieWeights: true }));
    expect(m.decoder.weight).toBe(m.embedding.weight);
    const names = m.namedParameters().map(([n]) => n);
    expect(names).toContain('embedding.weight');
    expect(names).not.toContain('decoder.weight');
    expect(names[names.length - 1]).toBe('decoder.bias');
    const untied = new RNNLanguageModel(small());
    expect(untied.numParameters() - m.numParameters()).toBe(7 * 4);
  });
});

describe('RNNLanguageModel: shapes and state', () => {
  it('gives logits [T, B, V] and states [L, B, H]', () => {
    const m = new RNNLanguageModel(small({ hiddenSize: 6, embedSize: 5, numLayers: 3 }));
    const { logits, state } = m.forward(ids(new Array(8).fill(1), 4, 2));
    expect(logits.shape).toEqual([4, 2, 7]);
    expect(state.h.shape).toEqual([3, 2, 6]);
    expect(state.c!.shape).toEqual([3, 2, 6]);
    const gru = new RNNLanguageModel(small({ cell: 'gru' }));
    expect(gru.forward(ids([1, 2], 1, 2)).state.c).toBeUndefined();
    expect(gru.zeroState(5).h.shape).toEqual([2, 5, 4]);
  });
  it('names the argument in shape errors', () => {
    const m = new RNNLanguageModel(small());
    expect(() => m.forward(tensor([1, 2, 3], [3], { dtype: 'int32' }))).toThrow(/'ids' must be \[T, B\]/);
    expect(() => m.forward(tensor([1, 2], [2, 1]))).toThrow(/'ids' must be int32/);
    expect(() => m.loss(ids([1, 2], 2, 1), ids([1, 2], 1, 2))).toThrow(/'targets' \[1, 2\] must have the shape of 'ids' \[2, 1\]/);
  });
  it('carrying the state across windows equals one long window (truncated BPTT)', () => {
    for (const cell of ['lstm', 'gru'] as const) {
      const m = new RNNLanguageModel(small({ cell }));
      const g = new Generator(2);
      const T = 6, B = 3;
      const all = randomInts(g, T * B, 7);
      const whole = m.forward(ids(all, T, B)).logits.toArray();
      const first = m.forward(ids(all.slice(0, 2 * B), 2, B));
      const second = m.forward(ids(all.slice(2 * B), T - 2, B), detachState(first.state));
      const pieces = [...first.logits.toArray(), ...second.logits.toArray()];
      pieces.forEach((v, i) => expect(v).toBeCloseTo(whole[i], 5));
    }
  });
  it('detachState keeps the values and cuts the graph', () => {
    const m = new RNNLanguageModel(small());
    const { state } = m.forward(ids([1, 2, 3, 4], 2, 2));
    expect(state.h.requiresGrad).toBe(true);
    const d = detachState(state);
    expect(d.h.requiresGrad).toBe(false);
    expect(d.c!.node).toBeNull();
    expect(Array.from(d.c!.data)).toEqual(Array.from(state.c!.data));
  });
  it('applies dropout in training mode only', () => {
    const m = new RNNLanguageModel(small({ dropout: 0.5 }));
    const x = ids([1, 2, 3, 4, 5, 6], 3, 2);
    const train1 = m.forward(x).logits.toArray(), train2 = m.forward(x).logits.toArray();
    expect(train1).not.toEqual(train2); // fresh masks each call
    m.eval();
    const eval1 = m.forward(x).logits.toArray(), eval2 = m.forward(x).logits.toArray();
    expect(eval1).toEqual(eval2);
    expect(eval1).not.toEqual(train1);
  });
});

describe('RNNLanguageModel: learning', () => {
  it('memorises a short text with truncated BPTT, then regenerates it greedily', () => {
    const text = 'the cat sat on the mat. the dog ate the log.';
    const chars = [...new Set(text)].sort();
    const enc = [...text].map((ch) => chars.indexOf(ch));
    const V = chars.length;
    const m = new RNNLanguageModel({ vocabSize: V, embedSize: 16, hiddenSize: 48, numLayers: 1, cell: 'lstm', seed: 1 });
    const adam = new Adam(m, { lr: 0.01 });
    // One sequence (B = 1) in windows of T, the state carried (detached) from window to window.
    const T = 11, windows = Math.floor((enc.length - 1) / T);
    const epoch = (learn: boolean): number => {
      let state: RecurrentState | null = null, total = 0;
      for (let w = 0; w < windows; w++) {
        const x = ids(enc.slice(w * T, w * T + T), T, 1), y = ids(enc.slice(w * T + 1, w * T + T + 1), T, 1);
        const r = learn ? m.loss(x, y, state) : noGrad(() => m.loss(x, y, state));
        if (learn) {
          adam.zeroGrad();
          r.loss.backward();
          adam.step();
        }
        total += r.loss.item();
        state = detachState(r.state);
      }
      return total / windows;
    };
    const untrained = epoch(false);
    expect(untrained).toBeGreaterThan(Math.log(V) - 0.2); // about ln V: nothing known yet
    for (let e = 0; e < 60; e++) epoch(true);
    const trained = epoch(false);
    expect(trained).toBeLessThan(0.1);
    const covered = windows * T; // the characters the windows trained on
    const generated = sample(m, { prompt: [enc[0]], length: covered, greedy: true });
    expect(generated.map((i) => chars[i]).join('')).toBe(text.slice(1, 1 + covered));
  });
});
