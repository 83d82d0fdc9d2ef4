// TreeClassifier (Tree-LSTM and tree RNN) against a node-by-node PyTorch implementation: every node's
// logits, the per-tree loss and the gradient of every parameter, on SST-style trees with 5 classes and
// with binary targets (neutral nodes ignored). Reference values from fixtures/tree/make_tree_fixtures.py
// (PyTorch 1.13, float64, closed-form weights).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { init, type DType } from '@loom/core';
import { parseTree } from '@loom/data';
import { IGNORE_LABEL, TreeClassifier, packTrees, type TreeCellKind } from '../src/index.js';

interface Case {
  name: string; cell: TreeCellKind; embedSize: number; hiddenSize: number; numClasses: number;
  params: Record<string, { shape: number[]; values: number[] }>;
  logits: number[][]; targets: number[]; loss: number; grads: Record<string, number[]>;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/tree/torch-tree.json', import.meta.url), 'utf8')) as { words: string[]; trees: string[]; cases: Case[] };
const wordId = (w: string): number => fixture.words.indexOf(w);

function expectClose(actual: ArrayLike<number>, expected: readonly number[], tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol * Math.max(1, Math.abs(expected[i])))) expect.fail(`${what}: element ${i}: got ${actual[i]}, PyTorch ${expected[i]} (error ${err.toExponential(2)})`);
  }
}

describe('TreeClassifier against PyTorch (node by node)', () => {
  for (const c of fixture.cases) {
    for (const [dtype, tol] of [['float64', 1e-12], ['float32', 2e-5]] as [DType, number][]) {
      it(`${c.name}, ${dtype}`, () => {
        const m = new TreeClassifier({ vocabSize: fixture.words.length, embedSize: c.embedSize, hiddenSize: c.hiddenSize, numClasses: c.numClasses, cell: c.cell, dtype });
        expect(m.namedParameters().map(([n]) => n)).toEqual(Object.keys(c.params));
        for (const [name, p] of m.namedParameters()) {
          expect(p.shape, name).toEqual(c.params[name].shape);
          init.setValues(p, c.params[name].values);
        }
        const binary = c.numClasses === 2;
        const p = packTrees(fixture.trees.map((s) => parseTree(s)), wordId, binary ? { target: (y) => (y < 2 ? 0 : y > 2 ? 1 : IGNORE_LABEL) } : {});
        expect(Array.from(p.postOrder, (row) => p.targets[row])).toEqual(c.targets);
        const logits = m.forward(p);
        const C = c.numClasses, data = logits.data;
        c.logits.forEach((expected, k) => expectClose(data.subarray(p.postOrder[k] * C, (p.postOrder[k] + 1) * C), expected, tol, `logits of node ${k}`));
        const loss = m.loss(p);
        expect(Math.abs(loss.item() - c.loss)).toBeLessThan(tol * Math.max(1, c.loss));
        loss.backward();
        for (const [name, param] of m.namedParameters()) expectClose(param.grad!.data, c.grads[name], tol * 10, `grad ${name}`);
      });
    }
  }
});
