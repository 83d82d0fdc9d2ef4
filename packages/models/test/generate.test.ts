import { describe, expect, it } from 'vitest';
import { Generator, noGrad, tensor } from '@loom/core';
import { RNNLanguageModel, argmax, pickToken, sample } from '../src/index.js';
import { ids } from './models-testkit.js';

const logits = [0.5, 2.0, -1.0, 1.5, 0.0, 1.9];

function softmax(xs: number[], t = 1): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp((x - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function frequencies(draw: () => number, n: number, size: number): number[] {
  const counts = new Array<number>(size).fill(0);
  for (let i = 0; i < n; i++) counts[draw()]++;
  return counts.map((c) => c / n);
}

describe('pickToken', () => {
  it('greedy takes the argmax (the lowest id among ties), and reads a row at an offset', () => {
    expect(pickToken(logits, { greedy: true })).toBe(1);
    expect(argmax([3, 7, 7, 1])).toBe(1);
    expect(pickToken([9, 9, 0, 1, 5, 2], { greedy: true }, 3, 3)).toBe(1); // row [1, 5, 2]
  });
  it('samples from softmax(logits / temperature)', () => {
    const n = 40000;
    for (const t of [1, 0.5, 2]) {
      const g = new Generator(7);
      const f = frequencies(() => pickToken(logits, { temperature: t, generator: g }), n, logits.length);
      const p = softmax(logits, t);
      // 4 standard deviations of a binomial frequency.
      p.forEach((pi, i) => expect(Math.abs(f[i] - pi)).toBeLessThan(4 * Math.sqrt((pi * (1 - pi)) / n) + 1e-3));
    }
  });
  it('top-k samples only among the k most likely, renormalised', () => {
    const g = new Generator(8);
    const n = 30000;
    const f = frequencies(() => pickToken(logits, { topK: 3, generator: g }), n, logits.length);
    const top = [1, 5, 3];
    const p = softmax(top.map((i) => logits[i]));
    f.forEach((fi, i) => {
      const j = top.indexOf(i);
      if (j < 0) expect(fi).toBe(0);
      else expect(Math.abs(fi - p[j])).toBeLessThan(4 * Math.sqrt((p[j] * (1 - p[j])) / n));
    });
    expect(pickToken(logits, { topK: 1, temperature: 5, generator: g })).toBe(1); // k = 1 is greedy
    expect(pickToken(logits, { topK: 100, generator: new Generator(1) })).toBe(pickToken(logits, { generator: new Generator(1) }));
  });
  it('is reproducible from a seeded generator and survives huge logits', () => {
    const a = new Generator(3), b = new Generator(3);
    const xs = Array.from({ length: 50 }, () => pickToken(logits, { generator: a }));
    expect(Array.from({ length: 50 }, () => pickToken(logits, { generator: b }))).toEqual(xs);
    expect(pickToken([1e30, 1e30 + 1e25, -1e30], { generator: a })).toBeLessThan(2);
  });
  it('names bad options', () => {
    expect(() => sample(new RNNLanguageModel({ vocabSize: 3, embedSize: 2, hiddenSize: 2, numLayers: 1, cell: 'gru' }), { prompt: [0], length: 2, temperature: 0 }))
      .toThrow(/options\.temperature must be a positive number/);
    expect(() => sample(new RNNLanguageModel({ vocabSize: 3, embedSize: 2, hiddenSize: 2, numLayers: 1, cell: 'gru' }), { prompt: [], length: 2 }))
      .toThrow(/options\.prompt must hold at least one token/);
    expect(() => sample(new RNNLanguageModel({ vocabSize: 3, embedSize: 2, hiddenSize: 2, numLayers: 1, cell: 'gru' }), { prompt: [1], length: 2, topK: 0 }))
      .toThrow(/options\.topK must be a positive integer/);
  });
});

describe('sample', () => {
  const model = (): RNNLanguageModel =>
    new RNNLanguageModel({ vocabSize: 9, embedSize: 6, hiddenSize: 8, numLayers: 2, cell: 'lstm', dropout: 0.3, seed: 4 });

  it('greedy generation carries the state: each token is the argmax of a full forward over prompt + generated so far', () => {
    const m = model();
    const prompt = [3, 1, 4];
    const out = sample(m, { prompt, length: 8, greedy: true });
    expect(out).toHaveLength(8);
    m.eval();
    const seq = [...prompt, ...out];
    const { logits } = noGrad(() => m.forward(ids(seq, seq.length, 1)));
    const d = logits.data;
    for (let t = prompt.length - 1; t < seq.length - 1; t++) expect(seq[t + 1]).toBe(argmax(d, t * 9, 9));
  });
  it('runs in evaluation mode and restores the training flag', () => {
    const m = model();
    const a = sample(m, { prompt: [1], length: 10, greedy: true });
    const b = sample(m, { prompt: [1], length: 10, greedy: true });
    expect(a).toEqual(b); // no dropout masks were drawn
    expect(m.training).toBe(true);
    m.eval();
    sample(m, { prompt: [1], length: 2 });
    expect(m.training).toBe(false);
  });
  it('generates from a given initial state (one-to-many)', () => {
    const m = model();
    m.eval();
    const g = new Generator(6);
    const shape = [2, 1, 8];
    const state = { h: tensor(Array.from({ length: 16 }, () => g.normal()), shape), c: tensor(Array.from({ length: 16 }, () => g.normal()), shape) };
    const out = sample(m, { prompt: [0], length: 6, greedy: true, state });
    const seq = [0, ...out];
    const d = noGrad(() => m.forward(ids(seq, seq.length, 1), state)).logits.data;
    for (let t = 0; t < out.length; t++) expect(seq[t + 1]).toBe(argmax(d, t * 9, 9));
    expect(out).not.toEqual(sample(m, { prompt: [0], length: 6, greedy: true }));
  });
  it('stops after the stop token and returns nothing for length 0', () => {
    const m = model();
    const out = sample(m, { prompt: [2], length: 30, greedy: true });
    const stop = out[3];
    const cut = sample(m, { prompt: [2], length: 30, greedy: true, stopToken: stop });
    expect(cut).toEqual(out.slice(0, out.indexOf(stop) + 1));
    expect(sample(m, { prompt: [2], length: 0 })).toEqual([]);
  });
  it('sampling with a seeded generator is reproducible and follows the temperature', () => {
    const m = model();
    const a = sample(m, { prompt: [5], length: 40, temperature: 1.5, generator: new Generator(2) });
    const b = sample(m, { prompt: [5], length: 40, temperature: 1.5, generator: new Generator(2) });
    expect(a).toEqual(b);
    const cold = sample(m, { prompt: [5], length: 40, temperature: 1e-4, generator: new Generator(2) });
    expect(cold).toEqual(sample(m, { prompt: [5], length: 40, greedy: true }));
  });
});
