import { describe, expect, it } from 'vitest';
import { Adam, Generator, noGrad, tensor } from '@loom/core';
import { SequenceClassifier, padSequences, type Pooling, type SequenceClassifierConfig } from '../src/index.js';
import { gradcheckModule } from './models-testkit.js';

const labels = (xs: number[]) => tensor(xs, [xs.length], { dtype: 'int32' });

describe('SequenceClassifier: gradients (float64, central differences)', () => {
  const cases: [string, Partial<SequenceClassifierConfig>][] = [
    ['last state, 2-layer LSTM, dropout', { pooling: 'last', numLayers: 2, dropout: 0.2 }],
    ['last state, bidirectional GRU', { pooling: 'last', cell: 'gru', bidirectional: true }],
    ['mean, bidirectional LSTM', { pooling: 'mean', bidirectional: true }],
    ['max, tanh RNN', { pooling: 'max', cell: 'rnn_tanh', numLayers: 2 }],
  ];
  for (const [name, over] of cases) {
    it(`${name}, padded batch with lengths`, () => {
      const m = new SequenceClassifier({ vocabSize: 6, embedSize: 3, hiddenSize: 4, numClasses: 3, cell: 'lstm', seed: 2, dtype: 'float64', ...over });
      const { ids, lengths } = padSequences([[1, 2, 3, 4], [5, 1], [2, 2, 3]], 0);
      const n = gradcheckModule(m, () => m.loss(ids, labels([0, 2, 1]), { lengths }), { generators: [m.generator] });
      expect(n).toBe(m.numParameters());
    });
  }
});

describe('SequenceClassifier: pooling over padded batches', () => {
  for (const pooling of ['last', 'mean', 'max'] as Pooling[]) {
    for (const bidirectional of [false, true]) {
      it(`${pooling}${bidirectional ? ', bidirectional' : ''}: a padded batch gives each sequence the logits it gets alone`, () => {
        const m = new SequenceClassifier({ vocabSize: 8, embedSize: 4, hiddenSize: 5, numClasses: 3, cell: 'lstm', numLayers: 2, pooling, bidirectional, seed: 5 });
        const seqs = [[1, 2, 3, 4, 5], [6, 7], [3, 3, 1]];
        const { ids, lengths } = padSequences(seqs, 7); // pad with a real token: only lengths can hide it
        const batch = noGrad(() => m.forward(ids, { lengths })).toArray();
        seqs.forEach((s, b) => {
          const alone = noGrad(() => m.forward(padSequences([s], 0).ids)).toArray();
          alone.forEach((v, j) => expect(batch[b * 3 + j]).toBeCloseTo(v, 5));
        });
      });
    }
  }
  it('mean and max pool the top layer outputs as their names say', () => {
    const m = new SequenceClassifier({ vocabSize: 5, embedSize: 3, hiddenSize: 4, numClasses: 2, cell: 'gru', pooling: 'mean', seed: 1 });
    const { ids } = padSequences([[1, 2, 3]], 0);
    const out = noGrad(() => m.rnn.forward(m.embedding.forward(ids))).output.data; // [3, 1, 4]
    const mean = noGrad(() => m.encode(ids)).data;
    for (let j = 0; j < 4; j++) expect(mean[j]).toBeCloseTo((out[j] + out[4 + j] + out[8 + j]) / 3, 6);
    const mx = new SequenceClassifier({ ...m.config, pooling: 'max' });
    const outMax = noGrad(() => mx.rnn.forward(mx.embedding.forward(ids))).output.data;
    const max = noGrad(() => mx.encode(ids)).data;
    for (let j = 0; j < 4; j++) expect(max[j]).toBeCloseTo(Math.max(outMax[j], outMax[4 + j], outMax[8 + j]), 6);
  });
  it('names bad lengths, labels and config keys', () => {
    const m = new SequenceClassifier({ vocabSize: 5, embedSize: 3, hiddenSize: 4, numClasses: 2, cell: 'gru' });
    const { ids } = padSequences([[1, 2], [3, 4]], 0);
    expect(() => m.forward(ids, { lengths: [2] })).toThrow(/opts\.lengths must hold one length per batch entry \(B = 2\)/);
    expect(() => m.forward(ids, { lengths: [0, 2] })).toThrow(/opts\.lengths\[0\] must be an integer in \[1, 2\]/);
    expect(() => m.loss(ids, labels([1]))).toThrow(/'labels' must be \[B\] with B = 2/);
    expect(() => new SequenceClassifier({ ...m.config, pooling: 'sum' as never })).toThrow(/config\.pooling must be 'last', 'mean' or 'max'/);
    expect(() => new SequenceClassifier({ ...m.config, numClasses: 0 })).toThrow(/config\.numClasses must be a positive integer/);
  });
});

describe('SequenceClassifier: learning', () => {
  it('learns a sequence rule (does the sequence end with the token it starts with?) on variable lengths', () => {
    // Tokens 1 and 2, lengths 2..7, padded with 0: the label needs the first token carried to the end.
    const g = new Generator(21);
    const batch = (n: number) => {
      const seqs = Array.from({ length: n }, () => Array.from({ length: 2 + g.int(6) }, () => 1 + g.int(2)));
      return { ...padSequences(seqs, 0), y: seqs.map((s) => (s[0] === s[s.length - 1] ? 1 : 0)) };
    };
    const m = new SequenceClassifier({ vocabSize: 3, embedSize: 4, hiddenSize: 16, numClasses: 2, cell: 'gru', pooling: 'last', seed: 3 });
    const test = batch(200);
    const accuracy = (): number => {
      const p = noGrad(() => m.predict(test.ids, { lengths: test.lengths }));
      return p.filter((c, i) => c === test.y[i]).length / p.length;
    };
    const before = accuracy();
    expect(before).toBeLessThan(0.7); // chance is about 0.5
    const opt = new Adam(m, { lr: 0.02 });
    for (let step = 0; step < 150; step++) {
      const b = batch(32);
      opt.zeroGrad();
      m.loss(b.ids, labels(b.y), { lengths: b.lengths }).backward();
      opt.step();
    }
    expect(accuracy()).toBeGreaterThan(0.95);
  });
});
