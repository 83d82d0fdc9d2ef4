/*
 * Packing a batch of binary trees for level-by-level evaluation. Every node gets a row in one table of
 * states: the leaves first (height 0), then all nodes of height 1 across the batch, then height 2, and so
 * on. A node's children have smaller heights, so level k can be computed once the levels below it are:
 * one gather and one matrix product per level, whatever the number of trees.
 *
 *   table rows:  [ leaves of all trees | height 1 | height 2 | ... ]     (targets, roots, postOrder use these)
 *
 * The encoder does not gather from that whole table, which grows with every level (copying it per level
 * costs levels × rows; 6.7× the rows below for SST batches of 25). It keeps a frontier instead: the
 * states computed so far whose parent is not computed yet. Level k gathers its children and the states
 * still waiting (carried) from the frontier left by level k-1, and leaves [its own nodes | carried]:
 *
 *   frontier 0 = the leaves, in row order
 *   frontier k = [ nodes of height k, in row order | frontier k-1 at carryPositions ]
 *   level k's children = frontier k-1 at childPositions
 *
 * A node is carried from its own level up to its parent's, so the frontiers add up to the nodes plus the
 * height gaps between children and parents (2.4 × the nodes for SST). Roots are not carried.
 * Within a level, nodes are in tree order, then post-order. Trees are plain data: any object with a
 * `label`, and either a `word` (a leaf) or two `children` (@loom/data's Tree fits), so this package needs
 * no reader.
 */
import { LoomError } from '@loom/core';

/** A labelled binary tree: a leaf has a word, an inner node exactly two children. */
export interface TreeLike {
  label: number;
  word?: string;
  children?: readonly TreeLike[];
}

/** A target equal to this is not trained on (PyTorch's ignore_index), e.g. SST's neutral phrases in the binary task. */
export const IGNORE_LABEL = -100;

export interface PackTreesOptions {
  /**
   * The training target of a node from its label (IGNORE_LABEL: no loss at that node), e.g. SST's binary
   * task maps 0, 1 → 0, 3, 4 → 1 and 2 → IGNORE_LABEL. Default: the label itself.
   */
  target?: (label: number, isRoot: boolean) => number;
}

/** The nodes of one height across the batch. */
export interface TreeLevel {
  size: number;
  /** [size, 2] row-major: the table rows of each node's left and right child. */
  children: Int32Array;
  /** [size, 2]: where the same children sit in the previous level's frontier. */
  childPositions: Int32Array;
  /** Positions in the previous level's frontier of the states carried past this level (their parents are higher). */
  carryPositions: Int32Array;
}

export interface PackedTrees {
  numTrees: number;
  numNodes: number;
  numLeaves: number;
  /** [numLeaves]: the word id of each leaf, in row order (rows 0 .. numLeaves-1). */
  leafWords: Int32Array;
  /** levels[k - 1] holds the nodes of height k; their rows follow the leaves and the lower levels. */
  levels: TreeLevel[];
  /** [numNodes]: each row's target (after `options.target`), IGNORE_LABEL where there is none. */
  targets: Int32Array;
  /** [numTrees]: the row of each tree's root, in input order. */
  roots: Int32Array;
  /** [numNodes]: the row of each node in the trees' post-order walks, one tree after the other. */
  postOrder: Int32Array;
}

/**
 * Packs trees into one state table's plan. `wordId` maps a leaf's word to its embedding row (an integer
 * ≥ 0; unknown words are the caller's choice, e.g. an <unk> row). Errors name the tree (its index in
 * `trees`) and what was wrong.
 */
export function packTrees(trees: readonly TreeLike[], wordId: (word: string) => number, options: PackTreesOptions = {}): PackedTrees {
  if (!Array.isArray(trees) || trees.length === 0) throw new LoomError('packTrees: trees must be a non-empty array of trees');
  const targetOf = options.target ?? ((label: number) => label);
  // Pass 1: every node's height, in post-order per tree (iterative: parse trees can be deep).
  const nodes: TreeLike[] = [];
  const heights: number[] = [];
  const isRoot: boolean[] = [];
  const treeEnds: number[] = [];
  let maxHeight = 0;
  trees.forEach((root, t) => {
    const height = new Map<TreeLike, number>();
    const stack: [TreeLike, number][] = [[root, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [node, k] = top;
      const kids = checkNode(node, t);
      if (kids && k < 2) {
        top[1]++;
        stack.push([kids[k], 0]);
        continue;
      }
      stack.pop();
      const h = kids ? 1 + Math.max(height.get(kids[0])!, height.get(kids[1])!) : 0;
      height.set(node, h);
      nodes.push(node);
      heights.push(h);
      isRoot.push(stack.length === 0);
      if (h > maxHeight) maxHeight = h;
    }
    treeEnds.push(nodes.length);
  });
  // Pass 2: rows. Level offsets from the counts per height; within a level, first come first served.
  const counts = new Array<number>(maxHeight + 1).fill(0);
  for (const h of heights) counts[h]++;
  const offsets = new Array<number>(maxHeight + 1).fill(0);
  for (let h = 1; h <= maxHeight; h++) offsets[h] = offsets[h - 1] + counts[h - 1];
  const next = offsets.slice();
  const N = nodes.length;
  const postOrder = new Int32Array(N);
  const rowOf = new Map<TreeLike, number>();
  for (let i = 0; i < N; i++) {
    const row = next[heights[i]]++;
    postOrder[i] = row;
    rowOf.set(nodes[i], row);
  }
  const numLeaves = counts[0];
  const leafWords = new Int32Array(numLeaves);
  const targets = new Int32Array(N);
  const parentHeight = new Int32Array(N).fill(-1); // by row; -1 for roots
  const levels: TreeLevel[] = counts.slice(1).map((size) => ({
    size, children: new Int32Array(2 * size), childPositions: new Int32Array(2 * size), carryPositions: new Int32Array(0),
  }));
  const roots = new Int32Array(trees.length);
  let tree = 0;
  for (let i = 0; i < N; i++) {
    while (i >= treeEnds[tree]) tree++;
    const node = nodes[i], row = postOrder[i];
    const target = targetOf(node.label, isRoot[i]);
    if (!Number.isInteger(target)) throw new LoomError(`packTrees: options.target(${node.label}) must return an integer (or IGNORE_LABEL), got ${String(target)} in tree ${tree}`);
    targets[row] = target;
    if (isRoot[i]) roots[tree] = row;
    if (heights[i] === 0) {
      const id = wordId(node.word!);
      if (!Number.isInteger(id) || id < 0) throw new LoomError(`packTrees: wordId('${node.word}') must return a non-negative integer, got ${String(id)} in tree ${tree}`);
      leafWords[row] = id;
    } else {
      const j = row - offsets[heights[i]];
      const l = rowOf.get(node.children![0])!, r = rowOf.get(node.children![1])!;
      levels[heights[i] - 1].children.set([l, r], 2 * j);
      parentHeight[l] = parentHeight[r] = heights[i];
    }
  }
  // Pass 3: the frontiers (see the top of this file). position[row]: where the row sits in the current one.
  const position = new Int32Array(N);
  let frontier = Int32Array.from({ length: numLeaves }, (_, row) => row);
  levels.forEach((level, k) => {
    const height = k + 1;
    frontier.forEach((row, p) => (position[row] = p));
    for (let j = 0; j < level.children.length; j++) level.childPositions[j] = position[level.children[j]];
    const carried = frontier.filter((row) => parentHeight[row] > height);
    level.carryPositions = Int32Array.from(carried, (row) => position[row]);
    const next = new Int32Array(level.size + carried.length);
    for (let j = 0; j < level.size; j++) next[j] = offsets[height] + j;
    next.set(carried, level.size);
    frontier = next;
  });
  return { numTrees: trees.length, numNodes: N, numLeaves, leafWords, levels, targets, roots, postOrder };
}

/** The node's two children, or null for a leaf; anything else is an error naming the tree. */
function checkNode(node: TreeLike, tree: number): readonly [TreeLike, TreeLike] | null {
  if (node === null || typeof node !== 'object') throw new LoomError(`packTrees: tree ${tree} holds ${String(node)} where a node was expected`);
  if (!Number.isInteger(node.label)) throw new LoomError(`packTrees: tree ${tree} has a node whose label is ${String(node.label)}; expected an integer`);
  const kids = node.children;
  if (kids === undefined || kids === null) {
    if (typeof node.word !== 'string') throw new LoomError(`packTrees: tree ${tree} has a leaf without a word (expected a string 'word' or two 'children')`);
    return null;
  }
  if (node.word !== undefined) throw new LoomError(`packTrees: tree ${tree} has a node with both a word ('${node.word}') and children`);
  if (kids.length !== 2) throw new LoomError(`packTrees: tree ${tree} has a node with ${kids.length} children; expected binary trees (2 children per inner node)`);
  return kids as readonly [TreeLike, TreeLike];
}
