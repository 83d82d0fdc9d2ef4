// Shared by the tree tests: seeded random binary trees, and a node-by-node recursive evaluation of the
// tree cells written directly from the equations in plain numbers (no tensors, no levels), to hold the
// batched level-by-level encoder to.
import type { Generator } from '@loom/core';
import type { BinaryTreeLSTMCell, TreeClassifier, TreeLike, TreeRNNCell } from '../src/index.js';

export interface TestTree extends TreeLike {
  label: number;
  word?: string;
  children?: [TestTree, TestTree];
}

/** A random binary tree over `words` with `leaves` leaves (random split points), labels in [0, numLabels). */
export function randomTree(g: Generator, leaves: number, words: readonly string[], numLabels: number): TestTree {
  if (leaves === 1) return { label: g.int(numLabels), word: words[g.int(words.length)] };
  const left = 1 + g.int(leaves - 1);
  return { label: g.int(numLabels), children: [randomTree(g, left, words, numLabels), randomTree(g, leaves - left, words, numLabels)] };
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** W [rows, cols] row-major times x, plus b. */
function affine(W: ArrayLike<number>, b: ArrayLike<number>, x: readonly number[], rows: number): number[] {
  const cols = x.length;
  return Array.from({ length: rows }, (_, r) => {
    let s = b[r];
    for (let j = 0; j < cols; j++) s += W[r * cols + j] * x[j];
    return s;
  });
}

interface RefState { h: number[]; c: number[] }

/** The state of every node of `tree`, post-order, computed one node at a time from the equations. */
export function recursiveStates(cell: TreeRNNCell | BinaryTreeLSTMCell, embed: ArrayLike<number>, wordId: (w: string) => number, tree: TestTree): RefState[] {
  const H = cell.hiddenSize, D = cell.inputSize;
  const out: RefState[] = [];
  const visit = (t: TestTree): RefState => {
    let s: RefState;
    if (t.children === undefined) {
      const id = wordId(t.word!);
      const x = Array.from({ length: D }, (_, j) => embed[id * D + j]);
      if (cell.kind === 'treernn') s = { h: x, c: [] };
      else {
        const co = affine(cell.weight_ih.data, cell.bias_ih.data, x, 2 * H);
        const c = co.slice(0, H);
        s = { h: c.map((cj, j) => sig(co[H + j]) * Math.tanh(cj)), c };
      }
    } else {
      const l = visit(t.children[0]), r = visit(t.children[1]);
      const hh = [...l.h, ...r.h];
      if (cell.kind === 'treernn') s = { h: affine(cell.weight_hh.data, cell.bias_hh.data, hh, H).map(Math.tanh), c: [] };
      else {
        const z = affine(cell.weight_hh.data, cell.bias_hh.data, hh, 5 * H);
        const c = Array.from({ length: H }, (_, j) =>
          sig(z[j]) * Math.tanh(z[3 * H + j]) + sig(z[H + j]) * l.c[j] + sig(z[2 * H + j]) * r.c[j]);
        s = { h: c.map((cj, j) => sig(z[4 * H + j]) * Math.tanh(cj)), c };
      }
    }
    out.push(s);
    return s;
  };
  visit(tree);
  return out;
}

/** Every node's logits, post-order, for a model in eval mode. */
export function recursiveLogits(model: TreeClassifier, wordId: (w: string) => number, tree: TestTree): number[][] {
  const C = model.config.numClasses;
  const W = model.classifier.weight.data, b = model.classifier.bias!.data;
  return recursiveStates(model.cell, model.embedding.weight.data, wordId, tree).map((s) => affine(W, b, s.h, C));
}
