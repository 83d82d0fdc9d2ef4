// MultiheadAttention, SelfAttentionBlock and LayerNorm against torch.nn.MultiheadAttention,
// torch.nn.TransformerEncoderLayer and torch.nn.LayerNorm: outputs, attention weights (averaged and per
// head) and the gradients of every parameter and input, with key padding and causal masks. The reference
// values come from fixtures/attention/make_attention_fixtures.py (PyTorch 1.13, float64, closed-form
// weights; the loss is documented there). Last, the argument checks of the attention modules.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { add, init, mul, sum, tensor, type DType, type Module, type Tensor } from '@loom/core';
import { AdditiveAttention, LayerNorm, MultiheadAttention, SelfAttentionBlock, paddingMask } from '../src/index.js';
import { expectClose } from './models-testkit.js';

interface Values { shape: number[]; values: number[] }
interface MhaCase {
  name: string;
  config: { embedSize: number; numHeads: number; Tq: number; Tk: number; B: number; bias: boolean; causal: boolean; sharing: 'self' | 'kv' | 'none'; averageWeights: boolean };
  lengths: number[] | null;
  inputs: Record<string, number[]>;
  params: Record<string, Values>;
  lossWeights: { output: number[]; weights: number[] };
  loss: number;
  output: Values; weights: Values;
  grads: Record<string, number[]>;
  inputGrads: Record<string, number[]>;
}
interface BlockCase {
  name: string;
  config: { embedSize: number; numHeads: number; ffnSize: number; T: number; B: number; normFirst: boolean; causal: boolean };
  lengths: number[] | null;
  x: number[];
  params: Record<string, Values>;
  lossWeights: { output: number[] };
  loss: number;
  output: Values;
  grads: Record<string, number[]>;
  gradX: number[];
}
interface LayerNormCase {
  shape: number[]; x: number[]; params: Record<string, Values>; lossWeights: { output: number[] }; loss: number;
  output: number[]; grads: Record<string, number[]>; gradX: number[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/attention/torch-attention.json', import.meta.url), 'utf8')) as {
  mha: MhaCase[]; blocks: BlockCase[]; layerNorm: LayerNormCase;
};

/** Imports PyTorch's parameters by name, checking that the names and their order agree. */
function load(model: Module, params: Record<string, Values>): void {
  expect(model.namedParameters().map(([n]) => n)).toEqual(Object.keys(params));
  for (const [name, p] of model.namedParameters()) {
    expect(p.shape, name).toEqual(params[name].shape);
    init.setValues(p, params[name].values);
  }
}

function checkGrads(model: Module, grads: Record<string, number[]>, tol: number): void {
  for (const [name, p] of model.namedParameters()) expectClose(p.grad!.data, grads[name], tol, `grad ${name}`);
}

const dtypes: [DType, number][] = [['float64', 1e-10], ['float32', 2e-5]];

describe('MultiheadAttention against torch.nn.MultiheadAttention', () => {
  for (const c of fixture.mha) {
    for (const [dtype, tol] of dtypes) {
      it(`${c.name} (${dtype})`, () => {
        const { embedSize: E, numHeads, Tq, Tk, B, bias, causal, sharing, averageWeights } = c.config;
        const m = new MultiheadAttention({ embedSize: E, numHeads, bias, dtype });
        load(m, c.params);
        const inputs: Record<string, Tensor> = {};
        for (const [name, values] of Object.entries(c.inputs)) {
          inputs[name] = tensor(values, [name === 'query' ? Tq : Tk, B, E], { dtype, requiresGrad: true });
        }
        const q = inputs.query;
        const k = sharing === 'self' ? q : inputs.key;
        const v = sharing === 'none' ? inputs.value : k;
        const r = m.forward(q, k, v, {
          keyPaddingMask: c.lengths ? paddingMask(c.lengths, Tk) : null, causal, averageWeights,
        });
        expect(r.output.shape).toEqual(c.output.shape);
        expectClose(r.output.data, c.output.values, tol, 'output');
        expect(r.weights!.shape).toEqual(c.weights.shape);
        expectClose(r.weights!.data, c.weights.values, tol, 'weights');
        const wo = tensor(c.lossWeights.output, c.output.shape, { dtype });
        const ww = tensor(c.lossWeights.weights, c.weights.shape, { dtype });
        const loss = add(sum(mul(r.output, wo)), sum(mul(r.weights!, ww)));
        expect(loss.item()).toBeCloseTo(c.loss, dtype === 'float64' ? 9 : 3);
        loss.backward();
        checkGrads(m, c.grads, tol * 10);
        for (const [name, t] of Object.entries(inputs)) expectClose(t.grad!.data, c.inputGrads[name], tol * 10, `grad ${name}`);
      });
    }
  }
});

describe('SelfAttentionBlock against torch.nn.TransformerEncoderLayer', () => {
  for (const c of fixture.blocks) {
    for (const [dtype, tol] of dtypes) {
      it(`${c.name} (${dtype})`, () => {
        const { embedSize, numHeads, ffnSize, T, B, normFirst, causal } = c.config;
        const block = new SelfAttentionBlock({ embedSize, numHeads, ffnSize, normFirst, dtype });
        load(block, c.params);
        const x = tensor(c.x, [T, B, embedSize], { dtype, requiresGrad: true });
        const { output } = block.forward(x, { keyPaddingMask: c.lengths ? paddingMask(c.lengths, T) : null, causal });
        expectClose(output.data, c.output.values, tol * 10, 'output');
        const loss = sum(mul(output, tensor(c.lossWeights.output, c.output.shape, { dtype })));
        expect(loss.item()).toBeCloseTo(c.loss, dtype === 'float64' ? 9 : 3);
        loss.backward();
        checkGrads(block, c.grads, tol * 20);
        expectClose(x.grad!.data, c.gradX, tol * 20, 'grad x');
      });
    }
  }
});

describe('LayerNorm against torch.nn.LayerNorm', () => {
  for (const [dtype, tol] of dtypes) {
    it(dtype, () => {
      const c = fixture.layerNorm;
      const ln = new LayerNorm(c.shape[c.shape.length - 1], { dtype });
      load(ln, c.params);
      const x = tensor(c.x, c.shape, { dtype, requiresGrad: true });
      const y = ln.forward(x);
      expectClose(y.data, c.output, tol, 'output');
      sum(mul(y, tensor(c.lossWeights.output, c.shape, { dtype }))).backward();
      checkGrads(ln, c.grads, tol * 10);
      expectClose(x.grad!.data, c.gradX, tol * 10, 'grad x');
    });
  }
});

describe('attention modules name bad options and shapes', () => {
  it('MultiheadAttention, masks, LayerNorm, AdditiveAttention', () => {
    expect(() => new MultiheadAttention({ embedSize: 6, numHeads: 4 })).toThrow(/MultiheadAttention: options\.embedSize \(6\) must be divisible by options\.numHeads \(4\)/);
    const m = new MultiheadAttention({ embedSize: 4, numHeads: 2 });
    const x = tensor(new Array(3 * 2 * 4).fill(0.1), [3, 2, 4]);
    expect(() => m.forward(tensor([1, 2, 3], [1, 1, 3]), x, x)).toThrow(/MultiheadAttention\.forward: 'query' must be \[T, B, E\] with E = 4 \(embedSize\), got \[1, 1, 3\]/);
    expect(() => m.forward(x, x, x, { keyPaddingMask: paddingMask([3, 2, 1], 3) })).toThrow(/'opts\.keyPaddingMask' must be \[B, Tk\] = \[2, 3\], got \[3, 3\]/);
    expect(() => m.forward(x, x, x, { attnMask: tensor([0, 0], [1, 2]) })).toThrow(/'opts\.attnMask' \[1, 2\] must broadcast against \[B, nh, Tq, Tk\] = \[2, 2, 3, 3\]/);
    expect(() => paddingMask([4], 3)).toThrow(/paddingMask: lengths\[0\] must be an integer in \[0, 3\], got 4/);
    expect(() => new LayerNorm(4).forward(x.reshape([3, 8]))).toThrow(/LayerNorm\.forward: 'x' must be \[\.\.\., 4\], got \[3, 8\]/);
    const att = new AdditiveAttention({ querySize: 2, keySize: 4, attentionSize: 3 });
    expect(() => att.forward(tensor([1, 2], [1, 2]), x)).toThrow(/AdditiveAttention\.attend: 'query' must be \[B, Hq\] = \[2, 2\], got \[1, 2\]/);
    expect(() => att.forward(tensor([1, 2, 3, 4], [2, 2]), x, x, [3, 0])).toThrow(/AdditiveAttention\.memory: lengths\[1\] must be an integer in \[1, 3\], got 0/);
  });
});
