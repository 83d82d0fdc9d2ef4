// Tree packing, the level-by-level encoder against a node-by-node recursive evaluation, float64 gradient
// checks of both tree cells and the classifier, and the errors.
import { describe, expect, it } from 'vitest';
import { Generator, Module, Parameter, init, mul, noGrad, sum, tensor, add } from '@loom/core';
import { parseTree } from '@loom/data';
import {
  BinaryTreeLSTMCell, IGNORE_LABEL, TreeClassifier, TreeRNNCell, encodeTrees, packTrees,
  type TreeCellKind, type TreeClassifierConfig,
} from '../src/index.js';
import { gradcheckModule } from './models-testkit.js';
import { randomTree, recursiveLogits, recursiveStates, type TestTree } from './tree-testkit.js';

const WORDS = ['a', 'b', 'c', 'd', 'e'];
const wordId = (w: string): number => WORDS.indexOf(w);
const sstBinary = (label: number): number => (label < 2 ? 0 : label > 2 ? 1 : IGNORE_LABEL);

describe('packTrees', () => {
  it('puts leaves first, then each height across the batch, and records children, targets and roots', () => {
    // t0: (3 (2 a) (4 (2 b) (3 c)))      heights: a 0, b 0, c 0, (b c) 1, root 2
    // t1: (1 (0 (1 d) (2 e)) (4 a))     heights: d 0, e 0, (d e) 1, a 0, root 2
    const t0 = parseTree('(3 (2 a) (4 (2 b) (3 c)))');
    const t1 = parseTree('(1 (0 (1 d) (2 e)) (4 a))');
    const p = packTrees([t0, t1], wordId, { target: sstBinary });
    expect(p.numTrees).toBe(2);
    expect(p.numNodes).toBe(10);
    expect(p.numLeaves).toBe(6);
    // Leaf rows in tree order then post-order: a b c | d e a.
    expect(Array.from(p.leafWords)).toEqual([0, 1, 2, 3, 4, 0]);
    expect(p.levels.map((l) => l.size)).toEqual([2, 2]);
    // Height 1: rows 6 = (b c) of t0, 7 = (d e) of t1. Height 2: rows 8 = root t0, 9 = root t1.
    expect(Array.from(p.levels[0].children)).toEqual([1, 2, 3, 4]);
    expect(Array.from(p.levels[1].children)).toEqual([0, 6, 7, 5]);
    // Frontiers: 0 = leaf rows [0 1 2 3 4 5]; level 1 takes b c (1, 2) and d e (3, 4) and carries a (0) and
    // a (5): frontier 1 = rows [6 7 0 5]; level 2 takes (a, bc) = positions (2, 0) and (de, a) = (1, 3).
    expect(Array.from(p.levels[0].childPositions)).toEqual([1, 2, 3, 4]);
    expect(Array.from(p.levels[0].carryPositions)).toEqual([0, 5]);
    expect(Array.from(p.levels[1].childPositions)).toEqual([2, 0, 1, 3]);
    expect(Array.from(p.levels[1].carryPositions)).toEqual([]);
    expect(Array.from(p.roots)).toEqual([8, 9]);
    // Post-order of t0: a b c (bc) root; of t1: d e (de) a root.
    expect(Array.from(p.postOrder)).toEqual([0, 1, 2, 6, 8, 3, 4, 7, 5, 9]);
    // Targets by row, after the binary mapping (2 → ignored).
    const I = IGNORE_LABEL;
    expect(Array.from(p.targets)).toEqual([I, I, 1, 0, I, 1, 1, 0, 1, 0]);
    // Without a mapping, the labels themselves.
    expect(Array.from(packTrees([t0], wordId).targets)).toEqual([2, 2, 3, 4, 3]);
  });

  it('packs a single leaf as a tree of one row and no levels', () => {
    const p = packTrees([{ label: 4, word: 'c' }], wordId);
    expect(p.levels).toEqual([]);
    expect(Array.from(p.roots)).toEqual([0]);
    expect(Array.from(p.targets)).toEqual([4]);
  });

  it('names the tree and the problem', () => {
    const leaf = { label: 1, word: 'a' };
    expect(() => packTrees([], wordId)).toThrow(/packTrees: trees must be a non-empty array/);
    expect(() => packTrees([leaf, { label: 1, children: [leaf, leaf, leaf] }], wordId)).toThrow(/tree 1 has a node with 3 children; expected binary trees/);
    expect(() => packTrees([{ label: 1, children: [leaf] }], wordId)).toThrow(/tree 0 has a node with 1 children/);
    expect(() => packTrees([{ label: 1 }], wordId)).toThrow(/tree 0 has a leaf without a word/);
    expect(() => packTrees([{ label: 1, word: 'a', children: [leaf, leaf] }], wordId)).toThrow(/both a word \('a'\) and children/);
    expect(() => packTrees([{ label: 0.5, word: 'a' }], wordId)).toThrow(/label is 0.5; expected an integer/);
    expect(() => packTrees([{ label: 1, word: 'zz' }], wordId)).toThrow(/wordId\('zz'\) must return a non-negative integer, got -1 in tree 0/);
    expect(() => packTrees([leaf], wordId, { target: () => 0.5 })).toThrow(/options\.target\(1\) must return an integer/);
  });
});

function model(cell: TreeCellKind, over: Partial<TreeClassifierConfig> = {}): TreeClassifier {
  return new TreeClassifier({ vocabSize: WORDS.length, embedSize: 4, hiddenSize: 4, numClasses: 3, cell, seed: 3, ...over });
}

describe('encodeTrees: level by level equals node by node', () => {
  for (const cell of ['treelstm', 'treernn'] as TreeCellKind[]) {
    it(`${cell}: every node's logits in a batch of random trees match a recursive evaluation`, () => {
      const m = model(cell, { dtype: 'float64', embedInit: 1 }).eval();
      const g = new Generator(7);
      const trees = [1, 2, 3, 5, 8, 13, 4].map((n) => randomTree(g, n, WORDS, 3));
      const p = packTrees(trees, wordId);
      const logits = noGrad(() => m.forward(p)).toArray();
      let k = 0;
      trees.forEach((t) => {
        for (const expected of recursiveLogits(m, wordId, t)) {
          const row = p.postOrder[k++];
          expected.forEach((v, j) => expect(logits[row * 3 + j]).toBeCloseTo(v, 12));
        }
      });
      expect(k).toBe(p.numNodes);
    });
  }

  it('the Tree-LSTM memories c match too, and each tree gets the same states alone as in the batch', () => {
    const cell = new BinaryTreeLSTMCell({ inputSize: 3, hiddenSize: 5, generator: new Generator(1), dtype: 'float64' });
    const embed = Array.from({ length: WORDS.length * 3 }, (_, i) => Math.cos(i));
    const table = tensor(embed, [WORDS.length, 3], { dtype: 'float64' });
    const g = new Generator(11);
    const trees = [6, 1, 9].map((n) => randomTree(g, n, WORDS, 2));
    const run = (ts: TestTree[]) => {
      const p = packTrees(ts, wordId);
      const x = tensor(Array.from(p.leafWords).flatMap((id) => embed.slice(id * 3, id * 3 + 3)), [p.numLeaves, 3], { dtype: 'float64' });
      return { p, s: encodeTrees(cell, x, p) };
    };
    const { p, s } = run(trees);
    const h = s.h.toArray(), c = s.c!.toArray();
    let k = 0;
    trees.forEach((t) => {
      const alone = run([t]);
      const hAlone = alone.s.h.toArray();
      recursiveStates(cell, table.data, wordId, t).forEach((ref, i) => {
        const row = p.postOrder[k++], rowAlone = alone.p.postOrder[i];
        for (let j = 0; j < 5; j++) {
          expect(h[row * 5 + j]).toBeCloseTo(ref.h[j], 12);
          expect(c[row * 5 + j]).toBeCloseTo(ref.c[j], 12);
          expect(hAlone[rowAlone * 5 + j]).toBe(h[row * 5 + j]);
        }
      });
    });
  });
});

/** A cell and trainable leaf inputs, so the gradient check also covers d/d(leaf inputs). */
class CellProbe extends Module {
  x: Parameter;
  constructor(readonly cell: TreeRNNCell | BinaryTreeLSTMCell, leaves: number) {
    super();
    this.x = init.uniform(new Parameter([leaves, cell.inputSize], { dtype: 'float64' }), -1, 1, new Generator(4)) as Parameter;
  }
}

describe('tree cells and classifier: gradients (float64, central differences)', () => {
  const g = new Generator(5);
  const trees = [5, 1, 7, 3].map((n) => randomTree(g, n, WORDS, 5));
  for (const kind of ['treelstm', 'treernn'] as TreeCellKind[]) {
    it(`${kind} cell through encodeTrees: weights and leaf inputs, from h (and c)`, () => {
      const opts = { inputSize: 3, hiddenSize: 3, generator: new Generator(2), dtype: 'float64' as const };
      const cell = kind === 'treelstm' ? new BinaryTreeLSTMCell(opts) : new TreeRNNCell(opts);
      const p = packTrees(trees, wordId);
      const probe = new CellProbe(cell, p.numLeaves);
      // A loss that weighs every state element differently, so no gradient can cancel by symmetry.
      const w = tensor(Array.from({ length: p.numNodes * 3 }, (_, i) => Math.sin(1 + i)), [p.numNodes, 3], { dtype: 'float64' });
      const loss = () => {
        const s = encodeTrees(cell, probe.x, p);
        const lh = sum(mul(s.h, w));
        return s.c ? add(lh, sum(mul(mul(s.c, s.c), w))) : lh;
      };
      expect(gradcheckModule(probe, loss)).toBe(probe.numParameters());
    });
  }

  const cases: [string, TreeCellKind, Partial<TreeClassifierConfig>, 'fine' | 'binary', 'tree' | 'node'][] = [
    ['Tree-LSTM, 5 classes, dropout on leaves and states, loss per tree', 'treelstm', { dropout: 0.3, embedDropout: 0.2, numClasses: 5 }, 'fine', 'tree'],
    ['Tree-LSTM, binary targets with ignored nodes, mean per node', 'treelstm', { numClasses: 2, embedSize: 3 }, 'binary', 'node'],
    ['tree RNN, 5 classes, dropout', 'treernn', { dropout: 0.25, numClasses: 5 }, 'fine', 'tree'],
  ];
  for (const [name, cell, over, labels, reduction] of cases) {
    it(`TreeClassifier: ${name}`, () => {
      const m = model(cell, { dtype: 'float64', embedInit: 0.8, ...over });
      const p = packTrees(trees, wordId, labels === 'binary' ? { target: sstBinary } : {});
      if (labels === 'binary') expect(Array.from(p.targets)).toContain(IGNORE_LABEL);
      const n = gradcheckModule(m, () => m.loss(p, { reduction }), { generators: [m.generator] });
      expect(n).toBe(m.numParameters());
    });
  }
});

describe('TreeClassifier: losses, predictions and errors', () => {
  it("'tree' sums over labelled nodes per tree, 'node' averages over them; ignored nodes count in neither", () => {
    const m = model('treelstm', { numClasses: 2, dtype: 'float64' }).eval();
    const g = new Generator(9);
    const trees = [4, 6, 2].map((n) => randomTree(g, n, WORDS, 5));
    const p = packTrees(trees, wordId, { target: sstBinary });
    const logits = noGrad(() => m.forward(p)).toArray();
    let total = 0, counted = 0;
    p.targets.forEach((t, row) => {
      if (t === IGNORE_LABEL) return;
      const [a, b] = [logits[2 * row], logits[2 * row + 1]];
      const mx = Math.max(a, b);
      total += mx + Math.log(Math.exp(a - mx) + Math.exp(b - mx)) - (t === 0 ? a : b);
      counted++;
    });
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeLessThan(p.numNodes);
    expect(noGrad(() => m.loss(p)).item()).toBeCloseTo(total / 3, 12);
    expect(noGrad(() => m.loss(p, { reduction: 'node' })).item()).toBeCloseTo(total / counted, 12);
    expect(m.predictRoots(p)).toEqual(Array.from(p.roots, (r) => (logits[2 * r + 1] > logits[2 * r] ? 1 : 0)));
  });

  it('dropout is active in training mode only', () => {
    const m = model('treelstm', { dropout: 0.5 });
    const p = packTrees([randomTree(new Generator(1), 6, WORDS, 5)], wordId);
    const a = noGrad(() => m.forward(p)).toArray(), b = noGrad(() => m.forward(p)).toArray();
    expect(a).not.toEqual(b);
    m.eval();
    expect(noGrad(() => m.forward(p)).toArray()).toEqual(noGrad(() => m.forward(p)).toArray());
  });

  it('names bad config keys, word ids and inputs', () => {
    expect(() => model('treelstm', { hiddenSize: 0 })).toThrow(/TreeClassifier: config\.hiddenSize must be a positive integer, got 0/);
    expect(() => model('gru' as never)).toThrow(/TreeClassifier: config\.cell must be one of 'treelstm', 'treernn', got gru/);
    expect(() => model('treernn', { embedSize: 3 })).toThrow(/config\.embedSize \(3\) must equal config\.hiddenSize \(4\) for cell 'treernn'/);
    expect(() => model('treelstm', { dropout: 1 })).toThrow(/config\.dropout must be a number in \[0, 1\)/);
    expect(() => model('treelstm', { embedDropout: -0.1 })).toThrow(/config\.embedDropout must be a number in \[0, 1\)/);
    expect(() => model('treelstm', { embedInit: 0 })).toThrow(/config\.embedInit must be a positive number/);
    expect(() => new TreeRNNCell({ inputSize: 2, hiddenSize: 3 })).toThrow(/TreeRNNCell: options\.inputSize \(2\) must equal options\.hiddenSize \(3\)/);
    expect(() => new BinaryTreeLSTMCell({ inputSize: 2, hiddenSize: -1 })).toThrow(/BinaryTreeLSTMCell: options\.hiddenSize must be a positive integer/);
    const m = model('treelstm');
    const p = packTrees([{ label: 0, word: 'x' }], () => 9);
    expect(() => m.forward(p)).toThrow(/TreeClassifier\.encode: leaf row 0 has word id 9, out of range for config\.vocabSize 5/);
    const q = packTrees([{ label: 0, word: 'a' }], wordId);
    expect(() => encodeTrees(m.cell, tensor([1, 2, 3], [1, 3]), q)).toThrow(/encodeTrees: 'leafInputs' must be \[numLeaves, D\] = \[1, 4\], got \[1, 3\]/);
    expect(() => m.cell.compose({ h: tensor([1, 2], [1, 2]) })).toThrow(/BinaryTreeLSTMCell\.compose: 'children\.h' must be \[n, 8\], got \[1, 2\]/);
    expect(() => m.cell.compose({ h: tensor(new Array(8).fill(0), [1, 8]) })).toThrow(/BinaryTreeLSTMCell\.compose: 'children\.c' must be \[1, 8\], got nothing/);
    expect(() => m.loss(q, { reduction: 'sum' as never })).toThrow(/treeLoss: opts\.reduction must be 'tree' or 'node'/);
  });
});
