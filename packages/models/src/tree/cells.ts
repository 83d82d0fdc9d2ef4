/*
 * Tree cells: how a leaf's word vector becomes a node state, and how two children's states become their
 * parent's. Both work on many nodes at once (one level of a batch of trees, see encoder.ts):
 *
 *   TreeRNNCell (Socher et al. 2011/2013):   leaf  h = x                         (D = H)
 *                                            node  h = tanh(W [h_l; h_r] + b)
 *   BinaryTreeLSTMCell (Tai et al. 2015, §3.2, the constituency / N-ary Tree-LSTM with N = 2):
 *     leaf  c = W_c x + b_c,  o = σ(W_o x + b_o),  h = o ⊙ tanh(c)    (the word enters at leaves only)
 *     node  [i; f_l; f_r; g; o] = W [h_l; h_r] + b   (W's left and right column blocks are U^(l), U^(r))
 *           i, f_l, f_r, o = σ(·),  g = tanh(·)
 *           c = i ⊙ g + f_l ⊙ c_l + f_r ⊙ c_r,  h = o ⊙ tanh(c)
 *
 * One forget gate per child, as in the paper, so a node can keep one child's memory and drop the other's.
 * The leaf module is that of Tai et al.'s code (treelstm, BinaryTreeLSTM.lua); their paper writes the
 * node equations only.
 *
 * Parameters (PyTorch-style names): weight_ih [2H, D] (rows: c then o) and bias_ih [2H] at the leaves;
 * weight_hh [G·H, 2H] (columns: left child then right child) and bias_hh [G·H] at inner nodes, G = 5
 * gate blocks (i, f_l, f_r, g, o) for the Tree-LSTM and 1 for the tree RNN. All ~ U(-1/√fanIn, 1/√fanIn),
 * the nn.Linear default that Tai et al.'s Torch code also used.
 */
import {
  LoomError, Module, Parameter, ShapeError, add, defaultGenerator, fmtShape, init, linear, mul, reshape, sigmoid, slice, sum, tanh,
  type DType, type Generator, type Tensor,
} from '@loom/core';

export type TreeCellKind = 'treelstm' | 'treernn';
export const TREE_CELL_KINDS: readonly TreeCellKind[] = ['treelstm', 'treernn'];

/** States of n nodes: h [n, H]; c [n, H] for the Tree-LSTM only. */
export interface TreeState {
  h: Tensor;
  c?: Tensor;
}

/** The children of n nodes side by side: h [n, 2H] (the left child's h, then the right child's), and c likewise for the Tree-LSTM. */
export interface ChildStates {
  h: Tensor;
  c?: Tensor;
}

/** What encodeTrees needs of a cell. */
export interface TreeCell {
  readonly kind: TreeCellKind;
  readonly inputSize: number;
  readonly hiddenSize: number;
  /** x [n, D] → the leaves' states. */
  leaf(x: Tensor): TreeState;
  /** The parents' states from their children's: one matrix product for all n nodes. */
  compose(children: ChildStates): TreeState;
}

export interface TreeCellOptions {
  /** D, the word vectors' size. */
  inputSize: number;
  /** H. */
  hiddenSize: number;
  generator?: Generator;
  dtype?: DType;
}

function checkSizes(where: string, o: TreeCellOptions): void {
  if (o === null || typeof o !== 'object') throw new LoomError(`${where}: options must be an object with inputSize and hiddenSize`);
  for (const k of ['inputSize', 'hiddenSize'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new LoomError(`${where}: options.${k} must be a positive integer, got ${String(o[k])}`);
  }
}

function linearParameter(shape: [number, number] | [number], fanIn: number, g: Generator, dtype: DType | undefined): Parameter {
  const bound = 1 / Math.sqrt(fanIn);
  return init.uniform(new Parameter(shape, { dtype }), -bound, bound, g) as Parameter;
}

function checkRows(where: string, arg: string, t: Tensor | undefined, cols: number, rows?: number): Tensor {
  if (!t || t.rank !== 2 || t.shape[1] !== cols || (rows !== undefined && t.shape[0] !== rows)) {
    throw new ShapeError(`${where}: '${arg}' must be [${rows ?? 'n'}, ${cols}], got ${t ? fmtShape(t.shape) : 'nothing'}`);
  }
  return t;
}

/** Columns [j·H, (j+1)·H) of an [n, G·H] matrix: gate block j. */
function block(x: Tensor, j: number, H: number): Tensor {
  return slice(x, [0, j * H], [x.shape[0], (j + 1) * H]);
}

/** Socher-style tree RNN: leaves are the word vectors themselves, so inputSize must equal hiddenSize. */
export class TreeRNNCell extends Module implements TreeCell {
  readonly kind = 'treernn' as const;
  readonly inputSize: number;
  readonly hiddenSize: number;
  weight_hh: Parameter;
  bias_hh: Parameter;

  constructor(options: TreeCellOptions) {
    super();
    checkSizes('TreeRNNCell', options);
    const { inputSize: D, hiddenSize: H } = options;
    if (D !== H) throw new LoomError(`TreeRNNCell: options.inputSize (${D}) must equal options.hiddenSize (${H}): the leaves' states are the word vectors`);
    this.inputSize = D;
    this.hiddenSize = H;
    const g = options.generator ?? defaultGenerator;
    this.weight_hh = linearParameter([H, 2 * H], 2 * H, g, options.dtype);
    this.bias_hh = linearParameter([H], 2 * H, g, options.dtype);
  }

  leaf(x: Tensor): TreeState {
    return { h: checkRows('TreeRNNCell.leaf', 'x', x, this.inputSize) };
  }

  compose(children: ChildStates): TreeState {
    const h = checkRows('TreeRNNCell.compose', 'children.h', children.h, 2 * this.hiddenSize);
    return { h: tanh(linear(h, this.weight_hh, this.bias_hh)) }; // [n, H]
  }
}

/** The constituency (binary N-ary) Tree-LSTM of Tai et al. (2015). */
export class BinaryTreeLSTMCell extends Module implements TreeCell {
  readonly kind = 'treelstm' as const;
  readonly inputSize: number;
  readonly hiddenSize: number;
  weight_ih: Parameter;
  bias_ih: Parameter;
  weight_hh: Parameter;
  bias_hh: Parameter;

  constructor(options: TreeCellOptions) {
    super();
    checkSizes('BinaryTreeLSTMCell', options);
    const { inputSize: D, hiddenSize: H } = options;
    this.inputSize = D;
    this.hiddenSize = H;
    const g = options.generator ?? defaultGenerator;
    this.weight_ih = linearParameter([2 * H, D], D, g, options.dtype);
    this.bias_ih = linearParameter([2 * H], D, g, options.dtype);
    this.weight_hh = linearParameter([5 * H, 2 * H], 2 * H, g, options.dtype);
    this.bias_hh = linearParameter([5 * H], 2 * H, g, options.dtype);
  }

  leaf(x: Tensor): TreeState {
    const H = this.hiddenSize;
    const co = linear(checkRows('BinaryTreeLSTMCell.leaf', 'x', x, this.inputSize), this.weight_ih, this.bias_ih); // [n, 2H]: c, o
    const c = block(co, 0, H);
    return { h: mul(sigmoid(block(co, 1, H)), tanh(c)), c };
  }

  compose(children: ChildStates): TreeState {
    const H = this.hiddenSize, where = 'BinaryTreeLSTMCell.compose';
    const h = checkRows(where, 'children.h', children.h, 2 * H);
    const n = h.shape[0];
    const cc = checkRows(where, 'children.c', children.c, 2 * H, n); // [n, 2H]: c_l, c_r
    const gates = linear(h, this.weight_hh, this.bias_hh); // [n, 5H]: i, f_l, f_r, g, o
    const i = sigmoid(block(gates, 0, H)), g = tanh(block(gates, 3, H)), o = sigmoid(block(gates, 4, H));
    const f = sigmoid(slice(gates, [0, H], [n, 3 * H])); // [n, 2H]: f_l, f_r, lined up with c_l, c_r
    const kept = sum(reshape(mul(f, cc), [n, 2, H]), 1); // f_l ⊙ c_l + f_r ⊙ c_r: [n, H]
    const c = add(mul(i, g), kept);
    return { h: mul(o, tanh(c)), c };
  }
}

export function makeTreeCell(kind: TreeCellKind, options: TreeCellOptions): TreeRNNCell | BinaryTreeLSTMCell {
  switch (kind) {
    case 'treernn': return new TreeRNNCell(options);
    case 'treelstm': return new BinaryTreeLSTMCell(options);
    default: throw new LoomError(`makeTreeCell: kind must be one of ${TREE_CELL_KINDS.map((k) => `'${k}'`).join(', ')}, got ${String(kind)}`);
  }
}
