// Learning checks: a Tree-LSTM learns rules over small generated trees and applies them to trees larger
// than any it was trained on. Words carry a bit ('x0', 'y0' → 0; 'x1', 'y1' → 1).
//  - parity: every node is labelled with the XOR of the bits below it (a label at every node, as in SST);
//    the root's label depends on every word, and no linear function of word counts gives it.
//  - leftmost: only roots are labelled, with the bit of the leftmost word; the bit has to travel up the
//    left spine through every level, kept by the left forget gates while the right children are dropped.
import { describe, expect, it } from 'vitest';
import { Adagrad, Generator, noGrad } from '@loom/core';
import { IGNORE_LABEL, TreeClassifier, packTrees, type PackTreesOptions, type PackedTrees } from '../src/index.js';
import { randomTree, type TestTree } from './tree-testkit.js';

const WORDS = ['x0', 'y0', 'x1', 'y1'];
const wordId = (w: string): number => WORDS.indexOf(w);
const bit = (t: TestTree): number => Number(t.word!.endsWith('1'));

function parity(t: TestTree): number {
  t.label = t.children ? parity(t.children[0]) ^ parity(t.children[1]) : bit(t);
  return t.label;
}

function leftmost(t: TestTree): number {
  let n = t;
  while (n.children) n = n.children[0];
  t.label = bit(n);
  return t.label;
}

function dataset(g: Generator, count: number, minLeaves: number, maxLeaves: number, rule: (t: TestTree) => number): TestTree[] {
  return Array.from({ length: count }, () => {
    const t = randomTree(g, minLeaves + g.int(maxLeaves - minLeaves + 1), WORDS, 2);
    rule(t);
    return t;
  });
}

function rootAccuracy(m: TreeClassifier, p: PackedTrees): number {
  m.eval();
  const pred = noGrad(() => m.predictRoots(p));
  m.train();
  return pred.filter((y, i) => y === p.targets[p.roots[i]]).length / pred.length;
}

/** Adagrad on batches of 20 until the test roots are 98% right or the epochs run out; accuracy before and after. */
function learn(rule: (t: TestTree) => number, pack: PackTreesOptions, maxEpochs: number): { before: number; after: number } {
  const g = new Generator(1);
  const train = dataset(g, 400, 2, 6, rule);
  const test = packTrees(dataset(g, 200, 7, 10, rule), wordId);
  const m = new TreeClassifier({ vocabSize: WORDS.length, embedSize: 8, hiddenSize: 16, numClasses: 2, cell: 'treelstm', seed: 1 });
  const before = rootAccuracy(m, test);
  const opt = new Adagrad(m, { lr: 0.1 });
  const batches = Array.from({ length: train.length / 20 }, (_, b) => packTrees(train.slice(20 * b, 20 * b + 20), wordId, pack));
  let after = before;
  for (let epoch = 0; epoch < maxEpochs && after < 0.98; epoch++) {
    for (const p of batches) {
      opt.zeroGrad();
      m.loss(p).backward();
      opt.step();
    }
    after = rootAccuracy(m, test);
  }
  return { before, after };
}

describe('Tree-LSTM learning checks', () => {
  it('learns parity from labels at every node (trees of 2-6 words) and applies it to trees of 7-10 words', () => {
    const { before, after } = learn(parity, {}, 10);
    expect(before).toBeLessThan(0.7);
    expect(after).toBeGreaterThanOrEqual(0.98);
  });

  it('learns the leftmost word from root labels only and carries it up taller trees', () => {
    const { before, after } = learn(leftmost, { target: (y, isRoot) => (isRoot ? y : IGNORE_LABEL) }, 30);
    expect(before).toBeLessThan(0.7);
    expect(after).toBeGreaterThanOrEqual(0.98);
  });
});
