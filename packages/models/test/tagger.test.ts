import { describe, expect, it } from 'vitest';
import { Adam, Generator, noGrad } from '@loom/core';
import { SequenceTagger, padSequences, type SequenceTaggerConfig } from '../src/index.js';
import { gradcheckModule } from './models-testkit.js';

describe('SequenceTagger: gradients (float64, central differences)', () => {
  const cases: [string, Partial<SequenceTaggerConfig>][] = [
    ['LSTM, dropout', { dropout: 0.3 }],
    ['bidirectional 2-layer GRU', { cell: 'gru', bidirectional: true, numLayers: 2 }],
    ['relu RNN', { cell: 'rnn_relu' }],
  ];
  for (const [name, over] of cases) {
    it(`${name}, padded batch with lengths`, () => {
      const m = new SequenceTagger({ vocabSize: 6, embedSize: 3, hiddenSize: 4, numTags: 3, cell: 'lstm', seed: 4, dtype: 'float64', ...over });
      const { ids, lengths } = padSequences([[1, 2, 3, 4], [5, 1], [2, 2, 3]], 0);
      const tags = padSequences([[0, 1, 2, 1], [2, 2], [1, 0, 0]], 0).ids;
      const n = gradcheckModule(m, () => m.loss(ids, tags, { lengths }), { generators: [m.generator] });
      expect(n).toBe(m.numParameters());
    });
  }
});

describe('SequenceTagger: padded batches', () => {
  it('gives each sequence the tag logits it gets alone, and ignores tags past the lengths', () => {
    const m = new SequenceTagger({ vocabSize: 8, embedSize: 4, hiddenSize: 5, numTags: 3, cell: 'lstm', bidirectional: true, seed: 5 });
    const seqs = [[1, 2, 3, 4, 5], [6, 7], [3, 3, 1]];
    const { ids, lengths } = padSequences(seqs, 7);
    const logits = noGrad(() => m.forward(ids, { lengths }));
    expect(logits.shape).toEqual([5, 3, 3]);
    const d = logits.data;
    seqs.forEach((s, b) => {
      const alone = noGrad(() => m.forward(padSequences([s], 0).ids)).data;
      for (let t = 0; t < s.length; t++) for (let c = 0; c < 3; c++) expect(d[(t * 3 + b) * 3 + c]).toBeCloseTo(alone[t * 3 + c], 5);
    });
    const tags = [[0, 1, 2, 0, 1], [2, 1], [1, 1, 0]];
    const a = padSequences(tags, 0).ids, b = padSequences(tags, 2).ids; // differ only past the lengths
    expect(noGrad(() => m.loss(ids, a, { lengths })).item()).toBeCloseTo(noGrad(() => m.loss(ids, b, { lengths })).item(), 6);
    expect(noGrad(() => m.predict(ids, { lengths })).map((p) => p.length)).toEqual([5, 2, 3]);
  });
  it('names a tag tensor of the wrong shape', () => {
    const m = new SequenceTagger({ vocabSize: 4, embedSize: 2, hiddenSize: 3, numTags: 2, cell: 'gru' });
    const { ids } = padSequences([[1, 2], [3, 1]], 0);
    expect(() => m.loss(ids, padSequences([[1, 0, 1]], 0).ids)).toThrow(/'tags' must have the shape of 'ids' \[2, 2\]/);
  });
});

describe('SequenceTagger: learning', () => {
  it('learns the running parity of a bit sequence', () => {
    // Input bits are tokens 1 (zero) and 2 (one); the tag at t is the parity of the ones in x[0..t].
    const g = new Generator(31);
    const T = 8;
    const batch = (n: number) => {
      const bits = Array.from({ length: n }, () => Array.from({ length: T }, () => g.int(2)));
      const parity = bits.map((s) => {
        let p = 0;
        return s.map((b) => (p ^= b));
      });
      return { ids: padSequences(bits.map((s) => s.map((b) => b + 1)), 0).ids, tags: padSequences(parity, 0).ids, parity };
    };
    const m = new SequenceTagger({ vocabSize: 3, embedSize: 4, hiddenSize: 16, numTags: 2, cell: 'gru', seed: 8 });
    const test = batch(100);
    const accuracy = (): number => {
      const p = noGrad(() => m.predict(test.ids));
      let right = 0;
      p.forEach((row, b) => row.forEach((tag, t) => (right += tag === test.parity[b][t] ? 1 : 0)));
      return right / (100 * T);
    };
    expect(accuracy()).toBeLessThan(0.7); // chance is 0.5
    const opt = new Adam(m, { lr: 0.03 });
    for (let step = 0; step < 150; step++) {
      const b = batch(32);
      opt.zeroGrad();
      m.loss(b.ids, b.tags).backward();
      opt.step();
    }
    expect(accuracy()).toBeGreaterThan(0.97);
  });
});
