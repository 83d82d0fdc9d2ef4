import { describe, expect, it } from 'vitest';
import { Adam, Generator, logSoftmax, noGrad } from '@loom/core';
import { Seq2Seq, SequenceAutoencoder, padSequences, type Seq2SeqConfig } from '../src/index.js';
import { gradcheckModule } from './models-testkit.js';

const PAD = 0, BOS = 1, EOS = 2;
const base = (over: Partial<Seq2SeqConfig> = {}): Seq2SeqConfig => ({
  srcVocabSize: 6, tgtVocabSize: 5, embedSize: 3, hiddenSize: 4, cell: 'lstm', bos: BOS, eos: EOS, pad: PAD, seed: 2, ...over,
});

/** log P(tokens [+ EOS] | src) under the model, one decoder step at a time (the definition beam search ranks by). */
function logProb(m: Seq2Seq, src: number[], tokens: number[], finished: boolean): number {
  return noGrad(() => {
    const enc = m.encode(padSequences([src], PAD).ids);
    let state = enc.state, prev = BOS, total = 0;
    const seq = finished ? [...tokens, EOS] : tokens;
    for (const tok of seq) {
      const r = m.decodeStep(padSequences([[prev]], PAD).ids, state, enc);
      total += logSoftmax(r.logits, -1).data[tok];
      state = r.state;
      prev = tok;
    }
    return total;
  });
}

describe('Seq2Seq: gradients (float64, central differences)', () => {
  const cases: [string, Partial<Seq2SeqConfig>][] = [
    ['2-layer LSTM with dropout', { numLayers: 2, dropout: 0.2 }],
    ['GRU, shared embeddings', { cell: 'gru', tgtVocabSize: 6, shareEmbeddings: true }],
    ['tanh RNN', { cell: 'rnn_tanh' }],
  ];
  for (const [name, over] of cases) {
    it(`${name}, padded sources and targets`, () => {
      const m = new Seq2Seq(base({ ...over, dtype: 'float64' }));
      const { ids: src, lengths } = padSequences([[3, 4, 5], [5, 1], [4]], PAD);
      const tgt = m.targets([[3, 4], [4, 4, 3], []]);
      const n = gradcheckModule(m, () => m.loss(src, tgt, { srcLengths: lengths }), { generators: [m.generator] });
      expect(n).toBe(m.numParameters());
    });
  }
  it('the autoencoder (the same model, target = input)', () => {
    const m = new SequenceAutoencoder({ vocabSize: 6, embedSize: 3, hiddenSize: 4, cell: 'gru', bos: BOS, eos: EOS, pad: PAD, dtype: 'float64' });
    const { ids, lengths } = padSequences([[3, 4, 5], [5, 3]], PAD);
    const n = gradcheckModule(m, () => m.reconstructionLoss(ids, { lengths }));
    expect(n).toBe(m.numParameters());
  });
});

describe('Seq2Seq: structure', () => {
  it('targets append EOS and pad; padded sources encode as they do alone', () => {
    const m = new Seq2Seq(base());
    expect(m.targets([[3, 4], [4]]).tolist()).toEqual([[3, 4], [4, EOS], [EOS, PAD]]);
    const seqs = [[3, 4, 5], [5, 1]];
    const { ids, lengths } = padSequences(seqs, PAD);
    const tgts = [[3], [4]];
    const tgt = m.targets(tgts);
    const batch = noGrad(() => m.forward(ids, tgt, { srcLengths: lengths })).data;
    seqs.forEach((s, b) => {
      const alone = noGrad(() => m.forward(padSequences([s], PAD).ids, m.targets([tgts[b]]))).data;
      for (let t = 0; t < 2; t++) for (let v = 0; v < 5; v++) expect(batch[(t * 2 + b) * 5 + v]).toBeCloseTo(alone[t * 5 + v], 5);
    });
  });
  it('the loss ignores PAD targets', () => {
    const m = new Seq2Seq(base());
    const { ids } = padSequences([[3, 4], [5, 3]], PAD);
    const tgt = m.targets([[3, 4, 3], [4]]);
    const l = noGrad(() => m.loss(ids, tgt)).item();
    // By hand: the mean over the 4 + 2 real positions of -log p(target).
    const lp = noGrad(() => logSoftmax(m.forward(ids, tgt), -1)).data;
    const want = [[3, 4, 3, EOS], [4, EOS]];
    let s = 0, n = 0;
    want.forEach((seq, b) => seq.forEach((tok, t) => { s -= lp[(t * 2 + b) * 5 + tok]; n++; }));
    expect(l).toBeCloseTo(s / n, 5);
  });
  it('teacher forcing 0 feeds back its own argmax: in eval mode it makes greedy decoding\'s choices', () => {
    const m = new Seq2Seq(base({ tgtVocabSize: 9, seed: 7 }));
    m.eval();
    const { ids, lengths } = padSequences([[3, 4, 5], [5, 1]], PAD);
    const greedy = m.greedyDecode(ids, { srcLengths: lengths, maxLen: 6 });
    // With teacherForcing 0 the gold tokens are never read: any target of length 6 will do.
    const tgt = padSequences([[3, 3, 3, 3, 3, 3], [3, 3, 3, 3, 3, 3]], PAD).ids;
    const logits = noGrad(() => m.forward(ids, tgt, { srcLengths: lengths, teacherForcing: 0 })).data;
    for (let b = 0; b < 2; b++) {
      const picks: number[] = [];
      for (let t = 0; t < 6; t++) {
        let best = -1;
        for (let v = 0; v < 9; v++) if (v !== PAD && v !== BOS && (best < 0 || logits[(t * 2 + b) * 9 + v] > logits[(t * 2 + b) * 9 + best])) best = v;
        if (best === EOS) break;
        picks.push(best);
      }
      expect(picks).toEqual(greedy[b]);
    }
  });
  it('names bad config keys and options', () => {
    expect(() => new Seq2Seq(base({ shareEmbeddings: true }))).toThrow(/shareEmbeddings needs srcVocabSize === tgtVocabSize, got 6 and 5/);
    expect(() => new Seq2Seq(base({ eos: 5 }))).toThrow(/config\.eos must be a target-vocabulary id in \[0, 5\)/);
    expect(() => new Seq2Seq(base({ pad: BOS }))).toThrow(/config\.pad must differ from bos and eos/);
    const m = new Seq2Seq(base());
    const { ids } = padSequences([[3]], PAD);
    expect(() => m.forward(ids, m.targets([[3]]), { teacherForcing: 2 })).toThrow(/opts\.teacherForcing must be a number in \[0, 1\]/);
    expect(() => m.beamSearch([3], { beamWidth: 0, maxLen: 3 })).toThrow(/config\.beamWidth must be a positive integer/);
  });
});

describe('Seq2Seq: beam search', () => {
  it('with width 1 is greedy decoding', () => {
    const m = new Seq2Seq(base({ tgtVocabSize: 8, seed: 9 }));
    for (const src of [[3, 4, 5], [5], [4, 4, 1, 3]]) {
      const greedy = m.greedyDecode(padSequences([src], PAD).ids, { maxLen: 7 })[0];
      const [best] = m.beamSearch(src, { beamWidth: 1, maxLen: 7 });
      expect(best.tokens).toEqual(greedy);
    }
  });
  it('wide enough to keep every prefix, it finds the most probable sequence (checked by enumeration)', () => {
    // Target tokens 3 and 4 (PAD and BOS are never emitted): with maxLen 4 there are 2⁰+…+2³ = 15 finished
    // sequences and 16 unfinished ones; width 16 prunes nothing.
    for (const seed of [1, 2, 3]) {
      const m = new Seq2Seq(base({ seed }));
      const src = [3, 5, 4];
      const candidates: { tokens: number[]; finished: boolean }[] = [];
      const grow = (prefix: number[]): void => {
        if (prefix.length < 4) candidates.push({ tokens: prefix, finished: true });
        if (prefix.length === 4) candidates.push({ tokens: prefix, finished: false });
        else for (const tok of [3, 4]) grow([...prefix, tok]);
      };
      grow([]);
      const scored = candidates.map((c) => ({ ...c, logProb: logProb(m, src, c.tokens, c.finished) })).sort((a, b) => b.logProb - a.logProb);
      const beams = m.beamSearch(src, { beamWidth: 16, maxLen: 4 });
      expect(beams[0].tokens).toEqual(scored[0].tokens);
      expect(beams[0].finished).toBe(scored[0].finished);
      expect(beams[0].logProb).toBeCloseTo(scored[0].logProb, 4);
      // Every hypothesis reports its true log-probability, best first.
      for (const h of beams) expect(h.logProb).toBeCloseTo(logProb(m, src, h.tokens, h.finished), 4);
      for (let i = 1; i < beams.length; i++) expect(beams[i].score).toBeLessThanOrEqual(beams[i - 1].score);
    }
  });
  it('ranks by GNMT length normalisation when lengthPenalty > 0', () => {
    const m = new Seq2Seq(base({ tgtVocabSize: 7 }));
    const alpha = 0.8;
    const beams = m.beamSearch([3, 4], { beamWidth: 4, maxLen: 5, lengthPenalty: alpha });
    for (const h of beams) {
      const n = h.tokens.length + (h.finished ? 1 : 0);
      expect(h.score).toBeCloseTo(h.logProb / ((5 + n) / 6) ** alpha, 6);
    }
    for (let i = 1; i < beams.length; i++) expect(beams[i].score).toBeLessThanOrEqual(beams[i - 1].score);
  });
});

describe('Seq2Seq: learning', () => {
  it('learns to reverse sequences', () => {
    // Tokens 3..7, lengths 1..5; target = the source reversed.
    const g = new Generator(41);
    const sample = (n: number) => Array.from({ length: n }, () => Array.from({ length: 1 + g.int(5) }, () => 3 + g.int(5)));
    const m = new Seq2Seq({ srcVocabSize: 8, tgtVocabSize: 8, embedSize: 16, hiddenSize: 64, cell: 'gru', bos: BOS, eos: EOS, pad: PAD, seed: 5 });
    const test = sample(60);
    const exact = (): number => {
      const { ids, lengths } = padSequences(test, PAD);
      const out = m.greedyDecode(ids, { srcLengths: lengths, maxLen: 7 });
      return out.filter((o, i) => o.join() === [...test[i]].reverse().join()).length / test.length;
    };
    expect(exact()).toBeLessThan(0.1);
    const opt = new Adam(m, { lr: 0.01 });
    for (let step = 0; step < 300; step++) {
      const seqs = sample(32);
      const { ids, lengths } = padSequences(seqs, PAD);
      opt.zeroGrad();
      m.loss(ids, m.targets(seqs.map((s) => [...s].reverse())), { srcLengths: lengths }).backward();
      opt.step();
    }
    // Over seeds, 300 steps reach 0.85-1 exact matches; the untrained model gets none.
    expect(exact()).toBeGreaterThan(0.75);
    const beam = test.slice(0, 10).map((s) => m.beamSearch(s, { beamWidth: 3, maxLen: 7 })[0].tokens.join());
    expect(beam.filter((b, i) => b === [...test[i]].reverse().join()).length).toBeGreaterThanOrEqual(7);
  });
});
