// Float64 central-difference gradient checks of every attention module: scaled dot-product attention
// (with masks and dropout), multi-head attention, layer norm, the self-attention block, the causal
// self-attention language model, additive attention and the attention encoder-decoder.
import { describe, expect, it } from 'vitest';
import { Generator, Module, Parameter, add, fromFunction, init, mul, sum, type Tensor } from '@loom/core';
import {
  AdditiveAttention, AttentionSeq2Seq, LayerNorm, MultiheadAttention, SelfAttentionBlock, SelfAttentionLM,
  causalMask, padSequences, paddingMask, scaledDotProductAttention, type AttentionSeq2SeqConfig,
} from '../src/index.js';
import { gradcheckModule } from './models-testkit.js';

/** Closed-form values, so every element of a loss weight differs (a plain sum of softmax rows has zero gradient). */
const wave = (shape: number[], phase = 0): Tensor => fromFunction(shape, (i) => Math.cos(0.37 * i + phase), { dtype: 'float64' });

/** Inputs held as parameters, so gradcheckModule checks the gradients with respect to them. */
class Inputs extends Module {
  constructor(readonly xs: Parameter[]) {
    super();
  }
}
function inputs(g: Generator, ...shapes: number[][]): Inputs {
  return new Inputs(shapes.map((s) => init.normal(new Parameter(s, { dtype: 'float64' }), 0, 1, g) as Parameter));
}

describe('attention gradients (float64, central differences)', () => {
  it('scaled dot-product attention: q, k, v through a causal and a padding mask and dropout', () => {
    const g = new Generator(3);
    const m = inputs(g, [2, 3, 4, 5], [2, 3, 6, 5], [2, 3, 6, 4]); // [B, nh, Tq, hs], [B, nh, Tk, hs], [B, nh, Tk, hv]
    const [q, k, v] = m.xs;
    const drop = new Generator(8);
    const masks = [causalMask(4, 6), paddingMask([6, 5], 6).reshape([2, 1, 1, 6])];
    const w1 = wave([2, 3, 4, 4]), w2 = wave([2, 3, 4, 6], 1);
    const n = gradcheckModule(m, () => {
      const r = scaledDotProductAttention(q, k, v, { mask: masks, dropout: 0.25, generator: drop });
      return add(sum(mul(r.output, w1)), sum(mul(r.weights, w2)));
    }, { generators: [drop] });
    expect(n).toBe(m.numParameters());
  });

  it('multi-head self-attention with causal and padding masks, attention dropout, averaged weights', () => {
    const g = new Generator(4);
    const mha = new MultiheadAttention({ embedSize: 6, numHeads: 2, dropout: 0.2, dtype: 'float64', generator: g });
    for (const p of mha.parameters()) init.normal(p, 0, 0.5, g); // non-zero biases
    const x = inputs(g, [5, 3, 6]).xs[0];
    const mask = paddingMask([5, 2, 4], 5);
    const w1 = wave([5, 3, 6]), w2 = wave([3, 5, 5], 2);
    const n = gradcheckModule(mha, () => {
      const r = mha.forward(x, x, x, { keyPaddingMask: mask, causal: true });
      return add(sum(mul(r.output, w1)), sum(mul(r.weights!, w2)));
    }, { generators: [g] });
    expect(n).toBe(mha.numParameters());
  });

  it('multi-head cross-attention: the inputs, per-head weights, no bias', () => {
    const g = new Generator(5);
    const mha = new MultiheadAttention({ embedSize: 4, numHeads: 2, bias: false, dtype: 'float64', generator: g });
    const m = inputs(g, [3, 2, 4], [5, 2, 4], [5, 2, 4]);
    const both = new Inputs([...mha.parameters(), ...m.xs]);
    const w1 = wave([3, 2, 4]), w2 = wave([2, 2, 3, 5], 1);
    const n = gradcheckModule(both, () => {
      const r = mha.forward(m.xs[0], m.xs[1], m.xs[2], { averageWeights: false, attnMask: causalMask(3, 5) });
      return add(sum(mul(r.output, w1)), sum(mul(r.weights!, w2)));
    });
    expect(n).toBe(both.numParameters());
  });

  it('layer norm: the input, weight and bias', () => {
    const g = new Generator(6);
    const ln = new LayerNorm(5, { dtype: 'float64' });
    for (const p of ln.parameters()) init.normal(p, 0, 1, g);
    const x = inputs(g, [3, 2, 5]);
    const both = new Inputs([...ln.parameters(), ...x.xs]);
    const w = wave([3, 2, 5]);
    expect(gradcheckModule(both, () => sum(mul(ln.forward(x.xs[0]), w)))).toBe(both.numParameters());
  });

  for (const normFirst of [false, true]) {
    it(`self-attention block (${normFirst ? 'pre' : 'post'}-norm) with dropout and masks`, () => {
      const g = new Generator(7);
      const block = new SelfAttentionBlock({ embedSize: 6, numHeads: 3, ffnSize: 8, dropout: 0.1, normFirst, dtype: 'float64', generator: g });
      for (const p of block.namedParameters().filter(([name]) => name.startsWith('norm')).map(([, p]) => p)) init.normal(p, 1, 0.3, g);
      const x = inputs(g, [4, 2, 6]).xs[0];
      const mask = paddingMask([4, 3], 4);
      const w = wave([4, 2, 6]);
      const n = gradcheckModule(block, () => sum(mul(block.forward(x, { keyPaddingMask: mask, causal: true }).output, w)), { generators: [g] });
      expect(n).toBe(block.numParameters());
    });
  }

  it('the causal self-attention language model (pre-norm, dropout, with a context)', () => {
    const m = new SelfAttentionLM({ vocabSize: 7, embedSize: 4, numHeads: 2, numLayers: 2, ffnSize: 6, maxLength: 6, dropout: 0.1, dtype: 'float64', seed: 3 });
    const ids = padSequences([[1, 2, 3], [4, 5, 6]], 0).ids;
    const context = { ids: padSequences([[6, 5], [3, 2]], 0).ids };
    const targets = padSequences([[2, 3, 0], [5, 6, 1]], 0).ids;
    const w = wave([3, 2, 7]);
    const n = gradcheckModule(m, () => add(m.loss(ids, targets, { ignoreIndex: 0 }), sum(mul(m.forward(ids, context).logits, w))), { generators: [m.generator] });
    expect(n).toBe(m.numParameters());
  });

  it('additive attention: query, keys, values and the scoring parameters, with lengths', () => {
    const g = new Generator(9);
    const att = new AdditiveAttention({ querySize: 3, keySize: 4, attentionSize: 5, dtype: 'float64', generator: g });
    const m = inputs(g, [2, 3], [4, 2, 4], [4, 2, 3]);
    const both = new Inputs([...att.parameters(), ...m.xs]);
    const w1 = wave([2, 3]), w2 = wave([2, 4], 1);
    const n = gradcheckModule(both, () => {
      const r = att.forward(m.xs[0], m.xs[1], m.xs[2], [4, 2]);
      return add(sum(mul(r.context, w1)), sum(mul(r.weights, w2)));
    });
    expect(n).toBe(both.numParameters());
  });

  const base = (over: Partial<AttentionSeq2SeqConfig>): AttentionSeq2SeqConfig => ({
    srcVocabSize: 6, tgtVocabSize: 5, embedSize: 3, hiddenSize: 4, cell: 'gru', bos: 1, eos: 2, pad: 0, seed: 2, dtype: 'float64', ...over,
  });
  // [name, config, teacher forcing ratio, elements checked per parameter (the LSTM's 960 parameters in full take seconds)]
  const cases: [string, Partial<AttentionSeq2SeqConfig>, number, number | undefined][] = [
    ['GRU', {}, 1, undefined],
    ['2-layer LSTM with dropout, attention size 3', { cell: 'lstm', numLayers: 2, dropout: 0.2, attentionSize: 3 }, 1, 12],
    ['tanh RNN, scheduled sampling', { cell: 'rnn_tanh' }, 0.5, undefined],
  ];
  for (const [name, over, teacherForcing, maxPerParameter] of cases) {
    it(`the attention encoder-decoder: ${name}, padded sources and targets`, () => {
      const m = new AttentionSeq2Seq(base(over));
      const { ids: src, lengths } = padSequences([[3, 4, 5], [5, 1], [4]], 0);
      const tgt = m.targets([[3, 4], [4, 4, 3], []]);
      const n = gradcheckModule(m, () => m.loss(src, tgt, { srcLengths: lengths, teacherForcing }), { generators: [m.generator], maxPerParameter });
      const params = m.parameters();
      expect(n).toBe(params.reduce((k, p) => k + Math.min(p.size, maxPerParameter ?? Infinity), 0));
    });
  }
});
