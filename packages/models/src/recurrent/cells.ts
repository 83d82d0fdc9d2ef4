/*
 * Recurrent cells: Elman RNN (tanh or relu), LSTM and GRU, with PyTorch's parameterisation so weights
 * import by name. Every cell is one `RecurrentCell`: `zeroState`, `projectInput` (the part of a step that
 * does not depend on the state, done for all T steps in one product by the unroll loop) and `step`.
 * Equations, shapes and initialisation are in docs/recurrent.md.
 */
import {
  Module, Parameter, add, init, matmul, mul, relu, sigmoid, slice, sub, tanh, zeros,
  defaultGenerator, LoomError, ShapeError, fmtShape,
  type DType, type Generator, type Tensor,
} from '@loom/core';

export type CellKind = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';
export const CELL_KINDS: readonly CellKind[] = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru'];

/** Gate blocks stacked in the weights: LSTM (i, f, g, o), GRU (r, z, n), RNN one. */
export function gateCount(kind: CellKind): number {
  return kind === 'lstm' ? 4 : kind === 'gru' ? 3 : 1;
}

/** The state of one cell (one layer, one direction): h [B, H]; c [B, H] for LSTM only. */
export interface CellState {
  h: Tensor;
  c?: Tensor;
}

/** A cell's parameters, PyTorch's shapes: W_ih [G·H, D], W_hh [G·H, H], b_ih, b_hh [G·H] (G gate blocks). */
export interface CellWeights {
  weightIh: Tensor;
  weightHh: Tensor;
  biasIh: Tensor | null;
  biasHh: Tensor | null;
}

/** The one step interface every cell implements; `unroll` (unroll.ts) is the one loop over time. */
export interface RecurrentCell {
  readonly kind: CellKind;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly weights: CellWeights;
  zeroState(batchSize: number): CellState;
  /**
   * The state-independent part of every step, for any leading shape: x [..., D] → xp [..., G·H] =
   * x·W_ihᵀ + b_ih, plus b_hh where the equations allow it to be folded in (every kind but GRU, whose
   * b_hn sits inside r ⊙ (·)). The unroll loop calls it once for all T steps: one matrix product.
   */
  projectInput(x: Tensor): Tensor;
  /** One step from the projected input xp [B, G·H] and the previous state. */
  step(xp: Tensor, state: CellState): CellState;
}

/** Columns [j·H, (j+1)·H) of a [B, G·H] matrix: gate block j. */
function gate(x: Tensor, j: number, H: number): Tensor {
  return slice(x, [0, j * H], [x.shape[0], (j + 1) * H]);
}

/**
 * A cell over given weights (shared with the module that owns them, e.g. one layer-direction of a
 * RecurrentLayer). The steps are compositions of core ops, so their gradients come from the primitives.
 */
export function makeCell(kind: CellKind, weights: CellWeights): RecurrentCell {
  const G = gateCount(kind);
  const [GH, D] = weights.weightIh.shape;
  const H = weights.weightHh.shape[1];
  if (GH !== G * H || weights.weightHh.shape[0] !== G * H) {
    throw new ShapeError(`makeCell(${kind}): weight_ih ${fmtShape(weights.weightIh.shape)} and weight_hh ${fmtShape(weights.weightHh.shape)} must both have ${G}·H rows (H = ${H})`);
  }
  const { weightIh, weightHh, biasIh, biasHh } = weights;
  const like = weightHh;
  // b_ih (+ b_hh where it folds), made on first use: the fused path reads the weights and never projects here.
  let foldedBias: Tensor | null | undefined;
  const bias = (): Tensor | null => (foldedBias ??= kind === 'gru' ? biasIh : biasIh && biasHh ? add(biasIh, biasHh) : biasIh ?? biasHh);

  const stepRnn = (xp: Tensor, s: CellState): CellState => {
    const pre = add(xp, matmul(s.h, weightHh, false, true)); // [B, H]
    return { h: kind === 'rnn_relu' ? relu(pre) : tanh(pre) };
  };
  const stepLstm = (xp: Tensor, s: CellState): CellState => {
    if (!s.c) throw new LoomError('LSTM step: the state has no cell state c');
    const gates = add(xp, matmul(s.h, weightHh, false, true)); // [B, 4H]: i, f, g, o
    const i = sigmoid(gate(gates, 0, H)), f = sigmoid(gate(gates, 1, H));
    const g = tanh(gate(gates, 2, H)), o = sigmoid(gate(gates, 3, H));
    const c = add(mul(f, s.c), mul(i, g)); // [B, H]
    return { h: mul(o, tanh(c)), c };
  };
  const stepGru = (xp: Tensor, s: CellState): CellState => {
    let hh = matmul(s.h, weightHh, false, true); // [B, 3H]: W_hr h, W_hz h, W_hn h
    if (biasHh) hh = add(hh, biasHh);
    const r = sigmoid(add(gate(xp, 0, H), gate(hh, 0, H)));
    const z = sigmoid(add(gate(xp, 1, H), gate(hh, 1, H)));
    const n = tanh(add(gate(xp, 2, H), mul(r, gate(hh, 2, H)))); // PyTorch's n: r multiplies W_hn h + b_hn
    return { h: add(n, mul(z, sub(s.h, n))) }; // (1 - z) ⊙ n + z ⊙ h
  };
  const step = kind === 'lstm' ? stepLstm : kind === 'gru' ? stepGru : stepRnn;

  return {
    kind,
    inputSize: D,
    hiddenSize: H,
    weights,
    zeroState(batchSize: number): CellState {
      const opts = { dtype: like.dtype, backend: like.backend };
      const h = zeros([batchSize, H], opts);
      return kind === 'lstm' ? { h, c: zeros([batchSize, H], opts) } : { h };
    },
    projectInput(x: Tensor): Tensor {
      if (x.shape[x.rank - 1] !== D) {
        throw new ShapeError(`${kind} cell: input ${fmtShape(x.shape)} has ${x.shape[x.rank - 1]} features, weight_ih ${fmtShape(weightIh.shape)} expects ${D}`);
      }
      const xp = matmul(x, weightIh, false, true); // [..., G·H]
      const b = bias();
      return b ? add(xp, b) : xp;
    },
    step(xp: Tensor, state: CellState): CellState {
      if (xp.rank !== 2 || xp.shape[1] !== G * H || state.h.rank !== 2 || state.h.shape[1] !== H || state.h.shape[0] !== xp.shape[0]) {
        throw new ShapeError(`${kind} cell step: expected xp [B, ${G * H}] and h [B, ${H}], got xp ${fmtShape(xp.shape)} and h ${fmtShape(state.h.shape)}`);
      }
      return step(xp, state);
    },
  };
}

export interface CellOptions {
  bias?: boolean; // default true
  generator?: Generator; // for the initialisation; default defaultGenerator
  dtype?: DType;
}

/** U(-1/√H, 1/√H) for every weight and bias, PyTorch's default for its recurrent modules. */
export function initRecurrentParameter(shape: readonly number[], hiddenSize: number, dtype: DType | undefined, g: Generator): Parameter {
  const bound = 1 / Math.sqrt(hiddenSize);
  return init.uniform(new Parameter(shape, { dtype }), -bound, bound, g) as Parameter;
}

export function checkSizes(where: string, sizes: Record<string, number>): void {
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v <= 0) throw new LoomError(`${where}: options.${k} must be a positive integer, got ${v}`);
  }
}

/**
 * A single cell as a module, like torch.nn.RNNCell / LSTMCell / GRUCell: parameters weight_ih [G·H, D],
 * weight_hh [G·H, H], bias_ih, bias_hh [G·H]. `forward(x [B, D], state?)` is one step.
 */
export class Cell extends Module implements RecurrentCell {
  weight_ih: Parameter;
  weight_hh: Parameter;
  bias_ih: Parameter | null;
  bias_hh: Parameter | null;

  constructor(readonly kind: CellKind, readonly inputSize: number, readonly hiddenSize: number, opts: CellOptions = {}) {
    super();
    if (!CELL_KINDS.includes(kind)) throw new LoomError(`Cell: kind must be one of ${CELL_KINDS.join(', ')}, got '${String(kind)}'`);
    checkSizes('Cell', { inputSize, hiddenSize });
    const g = opts.generator ?? defaultGenerator;
    const GH = gateCount(kind) * hiddenSize;
    this.weight_ih = initRecurrentParameter([GH, inputSize], hiddenSize, opts.dtype, g);
    this.weight_hh = initRecurrentParameter([GH, hiddenSize], hiddenSize, opts.dtype, g);
    const bias = opts.bias ?? true;
    this.bias_ih = bias ? initRecurrentParameter([GH], hiddenSize, opts.dtype, g) : null;
    this.bias_hh = bias ? initRecurrentParameter([GH], hiddenSize, opts.dtype, g) : null;
  }

  get weights(): CellWeights {
    return { weightIh: this.weight_ih, weightHh: this.weight_hh, biasIh: this.bias_ih, biasHh: this.bias_hh };
  }

  private cell(): RecurrentCell {
    return makeCell(this.kind, this.weights);
  }

  zeroState(batchSize: number): CellState {
    return this.cell().zeroState(batchSize);
  }
  projectInput(x: Tensor): Tensor {
    return this.cell().projectInput(x);
  }
  step(xp: Tensor, state: CellState): CellState {
    return this.cell().step(xp, state);
  }

  /** One step: x [B, D] and the state (zeros when absent) → the next state. */
  forward(x: Tensor, state?: CellState | null): CellState {
    if (x.rank !== 2) throw new ShapeError(`${this.constructor.name}.forward: 'x' must be [B, D], got ${fmtShape(x.shape)}`);
    const cell = this.cell();
    return cell.step(cell.projectInput(x), state ?? cell.zeroState(x.shape[0]));
  }
}

export class RNNCell extends Cell {
  constructor(inputSize: number, hiddenSize: number, opts: CellOptions & { nonlinearity?: 'tanh' | 'relu' } = {}) {
    super(rnnKind('RNNCell', opts.nonlinearity), inputSize, hiddenSize, opts);
  }
}

export class LSTMCell extends Cell {
  constructor(inputSize: number, hiddenSize: number, opts: CellOptions = {}) {
    super('lstm', inputSize, hiddenSize, opts);
  }
}

export class GRUCell extends Cell {
  constructor(inputSize: number, hiddenSize: number, opts: CellOptions = {}) {
    super('gru', inputSize, hiddenSize, opts);
  }
}

export function rnnKind(where: string, nonlinearity: string | undefined): CellKind {
  const n = nonlinearity ?? 'tanh';
  if (n !== 'tanh' && n !== 'relu') throw new LoomError(`${where}: options.nonlinearity must be 'tanh' or 'relu', got '${n}'`);
  return n === 'tanh' ? 'rnn_tanh' : 'rnn_relu';
}
