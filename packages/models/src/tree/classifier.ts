/*
 * A tree classifier with a label at every node, as for the Stanford Sentiment Treebank (Socher et al.
 * 2013; Tai et al. 2015): word ids at the leaves → embedding → a tree cell, bottom-up → every node's h →
 * dropout → linear → class logits per node. Trained with cross-entropy at every labelled node.
 */
import {
  Embedding, Generator, Linear, LoomError, Module, crossEntropy, div, dropout, gatherRows, init, tensor,
  type DType, type Tensor,
} from '@loom/core';
import { argmax } from '../generate.js';
import { checkDropout, checkDtype, checkPositiveInts, checkSeed, stripUndefined } from '../checks.js';
import { TREE_CELL_KINDS, makeTreeCell, type BinaryTreeLSTMCell, type TreeCellKind, type TreeRNNCell, type TreeState } from './cells.js';
import { encodeTrees } from './encoder.js';
import { IGNORE_LABEL, type PackedTrees } from './pack.js';

export interface TreeClassifierConfig {
  vocabSize: number;
  /** D. Must equal hiddenSize for 'treernn' (its leaves are the word vectors). */
  embedSize: number;
  /** H. */
  hiddenSize: number;
  numClasses: number;
  cell: TreeCellKind;
  /** On every node's h before the classifier (Tai et al. used 0.5). Default 0. */
  dropout?: number;
  /** On the word vectors at the leaves. Default 0. */
  embedDropout?: number;
  /** Word vectors start ~ U(-a, a) with a = embedInit (Tai et al.'s code: 0.05 for words without GloVe vectors). Default 0.05. */
  embedInit?: number;
  /** Default 0. */
  seed?: number;
  /** Default float32 (float64 for gradient checks). */
  dtype?: DType;
}

export const TREE_CLASSIFIER_DEFAULTS = {
  dropout: 0,
  embedDropout: 0,
  embedInit: 0.05,
  seed: 0,
  dtype: 'float32' as DType,
} satisfies Partial<TreeClassifierConfig>;

export interface TreeLossOptions {
  /**
   * 'tree' (default, Tai et al.): the sum of the nodes' cross-entropies divided by the number of trees;
   * 'node': the mean over labelled nodes.
   */
  reduction?: 'tree' | 'node';
}

/**
 * Parameters: embedding.weight [V, D], cell.* (cells.ts), classifier.weight [C, H] and classifier.bias [C]
 * (nn.Linear's default init).
 */
export class TreeClassifier extends Module {
  readonly config: Required<TreeClassifierConfig>;
  embedding: Embedding;
  cell: TreeRNNCell | BinaryTreeLSTMCell;
  classifier: Linear;
  readonly generator: Generator;

  constructor(config: TreeClassifierConfig) {
    super();
    const where = 'TreeClassifier';
    const c: Required<TreeClassifierConfig> = { ...TREE_CLASSIFIER_DEFAULTS, ...stripUndefined(config) };
    checkPositiveInts(where, c, ['vocabSize', 'embedSize', 'hiddenSize', 'numClasses']);
    if (!TREE_CELL_KINDS.includes(c.cell)) throw new LoomError(`${where}: config.cell must be one of ${TREE_CELL_KINDS.map((k) => `'${k}'`).join(', ')}, got ${String(c.cell)}`);
    if (c.cell === 'treernn' && c.embedSize !== c.hiddenSize) {
      throw new LoomError(`${where}: config.embedSize (${c.embedSize}) must equal config.hiddenSize (${c.hiddenSize}) for cell 'treernn': its leaves are the word vectors`);
    }
    checkDropout(where, c.dropout);
    if (typeof c.embedDropout !== 'number' || !(c.embedDropout >= 0 && c.embedDropout < 1)) throw new LoomError(`${where}: config.embedDropout must be a number in [0, 1), got ${String(c.embedDropout)}`);
    if (typeof c.embedInit !== 'number' || !(c.embedInit > 0) || !Number.isFinite(c.embedInit)) throw new LoomError(`${where}: config.embedInit must be a positive number, got ${String(c.embedInit)}`);
    checkSeed(where, c.seed);
    checkDtype(where, c.dtype);
    this.config = c;
    const g = (this.generator = new Generator(c.seed));
    this.embedding = new Embedding(c.vocabSize, c.embedSize, { dtype: c.dtype, generator: g });
    init.uniform(this.embedding.weight, -c.embedInit, c.embedInit, g);
    this.cell = makeTreeCell(c.cell, { inputSize: c.embedSize, hiddenSize: c.hiddenSize, generator: g, dtype: c.dtype });
    this.classifier = new Linear(c.hiddenSize, c.numClasses, { dtype: c.dtype, generator: g });
  }

  /** Every node's state, in the table order of `packed`: h [numNodes, H] (and c for the Tree-LSTM). */
  encode(packed: PackedTrees): TreeState {
    const V = this.config.vocabSize;
    const words = packed.leafWords;
    for (let i = 0; i < words.length; i++) {
      if (words[i] >= V) throw new LoomError(`TreeClassifier.encode: leaf row ${i} has word id ${words[i]}, out of range for config.vocabSize ${V}`);
    }
    const ids = tensor(words, [packed.numLeaves], { dtype: 'int32', backend: this.embedding.weight.backend });
    const x = dropout(gatherRows(this.embedding.weight, ids), this.config.embedDropout, this.training, this.generator); // [numLeaves, D]
    return encodeTrees(this.cell, x, packed);
  }

  /** Class logits of every node [numNodes, C], rows in the table order of `packed`. */
  forward(packed: PackedTrees): Tensor {
    const { h } = this.encode(packed);
    return this.classifier.forward(dropout(h, this.config.dropout, this.training, this.generator));
  }

  /** Cross-entropy at every node whose target is not IGNORE_LABEL (see TreeLossOptions for the scaling). */
  loss(packed: PackedTrees, opts: TreeLossOptions = {}): Tensor {
    return treeLoss(this.forward(packed), packed, opts);
  }

  /** The most likely class of every tree's root, in input order. */
  predictRoots(packed: PackedTrees): number[] {
    return rootPredictions(this.forward(packed), packed);
  }
}

/** The per-node loss from logits [numNodes, C]. */
export function treeLoss(logits: Tensor, packed: PackedTrees, opts: TreeLossOptions = {}): Tensor {
  const reduction = opts.reduction ?? 'tree';
  if (reduction !== 'tree' && reduction !== 'node') throw new LoomError(`treeLoss: opts.reduction must be 'tree' or 'node', got ${String(reduction)}`);
  const targets = tensor(packed.targets, [packed.numNodes], { dtype: 'int32', backend: logits.backend });
  if (reduction === 'node') return crossEntropy(logits, targets, { ignoreIndex: IGNORE_LABEL });
  return div(crossEntropy(logits, targets, { ignoreIndex: IGNORE_LABEL, reduction: 'sum' }), packed.numTrees);
}

/** argmax of each root's row of logits [numNodes, C]. */
export function rootPredictions(logits: Tensor, packed: PackedTrees): number[] {
  const C = logits.shape[1], data = logits.data;
  return Array.from(packed.roots, (row) => argmax(data, row * C, C));
}
