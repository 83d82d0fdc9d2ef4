// The causal self-attention language model: no position sees its future, a context carried between calls
// gives the logits of one long call, it plugs into `sample`, and it learns a task only attention can
// solve (copy the token `lag` positions back).
import { describe, expect, it } from 'vitest';
import { Adam, Generator, noGrad, tensor } from '@loom/core';
import { SelfAttentionLM, argmax, sample, type SelfAttentionLMConfig } from '../src/index.js';

const cfg = (over: Partial<SelfAttentionLMConfig> = {}): SelfAttentionLMConfig => ({
  vocabSize: 9, embedSize: 8, numHeads: 2, numLayers: 2, maxLength: 8, seed: 1, ...over,
});
const ids = (rows: number[][]) => tensor(Int32Array.from(rows.flat()), [rows.length, rows[0].length], { dtype: 'int32' });

describe('SelfAttentionLM: structure', () => {
  for (const normFirst of [true, false]) {
    it(`is causal: changing tokens at t and later leaves the logits before t alone (${normFirst ? 'pre' : 'post'}-norm)`, () => {
      const m = new SelfAttentionLM(cfg({ normFirst }));
      const a = [[1, 2], [3, 4], [5, 6], [7, 8], [2, 1], [4, 3]]; // [T, B]
      const b = a.map((row, t) => (t >= 3 ? row.map((v) => (v + 3) % 9) : row));
      const la = noGrad(() => m.forward(ids(a)).logits).data, lb = noGrad(() => m.forward(ids(b)).logits).data;
      const per = 2 * 9; // B·V values per step
      for (let i = 0; i < 3 * per; i++) expect(lb[i]).toBeCloseTo(la[i], 6);
      let changed = 0;
      for (let i = 3 * per; i < la.length; i++) changed = Math.max(changed, Math.abs(la[i] - lb[i]));
      expect(changed).toBeGreaterThan(1e-4);
    });
  }

  it('a context carried between calls gives the logits of one long call, and keeps the last maxLength tokens', () => {
    const m = new SelfAttentionLM(cfg({ maxLength: 6 }));
    const seq = [[3], [1], [4], [1], [5], [0]];
    const whole = noGrad(() => m.forward(ids(seq)).logits).data;
    const first = noGrad(() => m.forward(ids(seq.slice(0, 4))));
    const second = noGrad(() => m.forward(ids(seq.slice(4)), first.state));
    for (let i = 0; i < 2 * 9; i++) expect(second.logits.data[i]).toBeCloseTo(whole[4 * 9 + i], 6);
    expect(second.state.ids.shape).toEqual([6, 1]);
    // Two more tokens: the two oldest fall out of view, so it equals a fresh call on the last six.
    const third = noGrad(() => m.forward(ids([[2], [6]]), second.state));
    expect(Array.from(third.state.ids.data)).toEqual([4, 1, 5, 0, 2, 6]);
    const fresh = noGrad(() => m.forward(ids([[4], [1], [5], [0], [2], [6]])).logits).data;
    for (let i = 0; i < 9; i++) expect(third.logits.data[9 + i]).toBeCloseTo(fresh[5 * 9 + i], 6);
    expect(() => m.forward(ids([[1], [2], [3], [4], [5], [6], [7]]))).toThrow(/'ids' has 7 steps, more than config\.maxLength \(6\)/);
  });

  it('works with sample(): greedy generation equals argmax over full recomputation', () => {
    const m = new SelfAttentionLM(cfg({ seed: 5 }));
    const got = sample(m, { prompt: [3, 4], length: 5, greedy: true });
    const seq = [3, 4];
    for (let i = 0; i < 5; i++) {
      const l = noGrad(() => m.forward(ids(seq.slice(-8).map((v) => [v]))).logits).data;
      seq.push(argmax(l, (Math.min(seq.length, 8) - 1) * 9, 9));
    }
    expect(got).toEqual(seq.slice(2));
  });

  it('names bad config keys', () => {
    expect(() => new SelfAttentionLM(cfg({ numHeads: 3 }))).toThrow(/config\.embedSize \(8\) must be divisible by config\.numHeads \(3\)/);
    expect(() => new SelfAttentionLM(cfg({ maxLength: 0 }))).toThrow(/config\.maxLength must be a positive integer/);
  });
});

describe('SelfAttentionLM: learning', () => {
  it('learns to copy the token 4 positions back (chance 1/8; a model without attention cannot see it)', () => {
    const T = 12, V = 8, lag = 4;
    const g = new Generator(7);
    const batch = (n: number) => {
      const x = new Int32Array((T + 1) * n);
      for (let b = 0; b < n; b++) for (let t = 0; t <= T; t++) x[t * n + b] = t < lag ? g.int(V) : x[(t - lag) * n + b];
      return { ids: tensor(x.subarray(0, T * n), [T, n], { dtype: 'int32' }), targets: tensor(x.subarray(n), [T, n], { dtype: 'int32' }) };
    };
    const m = new SelfAttentionLM({ vocabSize: V, embedSize: 32, numHeads: 2, numLayers: 1, maxLength: T, seed: 2 });
    const test = batch(100);
    // Accuracy where the next token is determined: targets at t ≥ lag - 1.
    const accuracy = (): number => noGrad(() => {
      const l = m.forward(test.ids).logits.data, tg = test.targets.data;
      let ok = 0, n = 0;
      for (let t = lag - 1; t < T; t++) for (let b = 0; b < 100; b++, n++) ok += +(argmax(l, (t * 100 + b) * V, V) === tg[t * 100 + b]);
      return ok / n;
    });
    expect(accuracy()).toBeLessThan(0.3);
    const opt = new Adam(m, { lr: 0.01 });
    // Seeds 1-3 reach 1.0 by step 60.
    for (let step = 0; step < 80; step++) {
      const { ids: x, targets } = batch(32);
      opt.zeroGrad();
      m.loss(x, targets).backward();
      opt.step();
    }
    expect(accuracy()).toBeGreaterThan(0.95);
  });
});
