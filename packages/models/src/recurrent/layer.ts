/*
 * Stacked, optionally bidirectional recurrent layers: torch.nn.RNN / LSTM / GRU. Parameters are fields
 * named exactly as PyTorch's (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, with _reverse for
 * the backward direction), created in PyTorch's order, so state dicts import by name and
 * namedParameters() lists them in the same order. Time-major: x [T, B, D] → output [T, B, dirs·H].
 */
import {
  Module, concat, defaultGenerator, dropout as dropoutOp, matmul, reshape, slice, unsqueeze,
  LoomError, ShapeError, fmtShape, recurrentSequence,
  type DType, type Generator, type Parameter, type Tensor,
} from '@loom/core';
import {
  CELL_KINDS, checkSizes, gateCount, initRecurrentParameter, makeCell, rnnKind,
  type CellKind, type CellState, type CellWeights, type RecurrentCell,
} from './cells.js';
import { checkLengths, unroll } from './unroll.js';

export interface RecurrentOptions {
  inputSize: number;
  hiddenSize: number;
  /** Stacked layers; default 1. */
  numLayers?: number;
  /** A second, reversed direction per layer whose outputs are concatenated; default false. */
  bidirectional?: boolean;
  /** Dropout on the outputs of every layer but the last (training mode only), as PyTorch; default 0. */
  dropout?: number;
  /** Biases b_ih and b_hh; default true. */
  bias?: boolean;
  /** For the initialisation and the dropout masks; default defaultGenerator. */
  generator?: Generator;
  dtype?: DType;
  /**
   * 'fused' (default): each layer-direction runs as one core primitive (recurrentSequence) with a
   * whole-sequence backward; 'composed': the cells' steps composed of core ops, unrolled by `unroll`.
   * Both compute the same values and gradients (checked by the tests); fused is faster (scripts/bench-recurrent.ts).
   */
  implementation?: 'fused' | 'composed';
}

/** h: [L·dirs, B, H] (PyTorch's layout: layer-major, direction-minor); c only for LSTM. */
export interface RecurrentState {
  h: Tensor;
  c?: Tensor;
}

export interface RecurrentResult {
  output: Tensor; // [T, B, dirs·H]
  state: RecurrentState;
}

export interface RecurrentForwardOptions {
  /** Valid steps per batch entry, each in [0, T]: PyTorch's packed sequences (see unroll.ts). */
  lengths?: readonly number[] | null;
}

export class RecurrentLayer extends Module {
  readonly kind: CellKind;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly bidirectional: boolean;
  readonly dropout: number;
  readonly bias: boolean;
  implementation: 'fused' | 'composed';
  private readonly _generator: Generator;

  constructor(kind: CellKind, options: RecurrentOptions) {
    super();
    const where = `${layerName(kind)}`;
    if (!CELL_KINDS.includes(kind)) throw new LoomError(`RecurrentLayer: kind must be one of ${CELL_KINDS.join(', ')}, got '${String(kind)}'`);
    if (options === null || typeof options !== 'object') throw new LoomError(`${where}: options must be an object with inputSize and hiddenSize`);
    const o = options;
    this.kind = kind;
    this.inputSize = o.inputSize;
    this.hiddenSize = o.hiddenSize;
    this.numLayers = o.numLayers ?? 1;
    checkSizes(where, { inputSize: this.inputSize, hiddenSize: this.hiddenSize, numLayers: this.numLayers });
    this.bidirectional = checkBool(where, 'bidirectional', o.bidirectional, false);
    this.bias = checkBool(where, 'bias', o.bias, true);
    this.dropout = o.dropout ?? 0;
    if (typeof this.dropout !== 'number' || !(this.dropout >= 0 && this.dropout < 1)) {
      throw new LoomError(`${where}: options.dropout must be a number in [0, 1), got ${String(o.dropout)}`);
    }
    this.implementation = o.implementation ?? 'fused';
    if (this.implementation !== 'fused' && this.implementation !== 'composed') {
      throw new LoomError(`${where}: options.implementation must be 'fused' or 'composed', got '${String(o.implementation)}'`);
    }
    if (o.dtype !== undefined && o.dtype !== 'float32' && o.dtype !== 'float64') {
      throw new LoomError(`${where}: options.dtype must be 'float32' or 'float64', got '${String(o.dtype)}'`);
    }
    this._generator = o.generator ?? defaultGenerator;

    // PyTorch's order: per layer, per direction: w_ih, w_hh, b_ih, b_hh, all ~ U(-1/√H, 1/√H).
    const H = this.hiddenSize, GH = gateCount(kind) * H, dirs = this.directions;
    const self = this as unknown as Record<string, Parameter>;
    for (let l = 0; l < this.numLayers; l++) {
      const inSize = l === 0 ? this.inputSize : H * dirs;
      for (let d = 0; d < dirs; d++) {
        const n = parameterNames(l, d);
        self[n.weightIh] = initRecurrentParameter([GH, inSize], H, o.dtype, this._generator);
        self[n.weightHh] = initRecurrentParameter([GH, H], H, o.dtype, this._generator);
        if (this.bias) {
          self[n.biasIh] = initRecurrentParameter([GH], H, o.dtype, this._generator);
          self[n.biasHh] = initRecurrentParameter([GH], H, o.dtype, this._generator);
        }
      }
    }
  }

  get directions(): number {
    return this.bidirectional ? 2 : 1;
  }

  /** The weights of layer l, direction d (0 forward, 1 reverse): the tensors themselves, not copies. */
  weights(layer: number, direction: number): CellWeights {
    if (!(Number.isInteger(layer) && layer >= 0 && layer < this.numLayers) || !(direction === 0 || (direction === 1 && this.bidirectional))) {
      throw new LoomError(`${layerName(this.kind)}.weights: no layer ${layer}, direction ${direction} (numLayers ${this.numLayers}, bidirectional ${this.bidirectional})`);
    }
    const n = parameterNames(layer, direction);
    const self = this as unknown as Record<string, Parameter | undefined>;
    return { weightIh: self[n.weightIh]!, weightHh: self[n.weightHh]!, biasIh: self[n.biasIh] ?? null, biasHh: self[n.biasHh] ?? null };
  }

  /** The cell of layer l, direction d, over this module's parameters (built on demand, so replaced parameters are seen). */
  cell(layer: number, direction: number): RecurrentCell {
    return makeCell(this.kind, this.weights(layer, direction));
  }

  /** Zeros: h [L·dirs, B, H] (and c for LSTM). */
  zeroState(batchSize: number): RecurrentState {
    checkSizes(`${layerName(this.kind)}.zeroState`, { batchSize });
    const s = this.cell(0, 0).zeroState(batchSize * this.numLayers * this.directions);
    const shape = [this.numLayers * this.directions, batchSize, this.hiddenSize];
    return s.c ? { h: reshape(s.h, shape), c: reshape(s.c, shape) } : { h: reshape(s.h, shape) };
  }

  /**
   * x [T, B, D] and an optional initial state (zeros when absent) → output [T, B, dirs·H] and the final
   * state [L·dirs, B, H]. Gradients flow into the initial state when it requires them; carrying the final
   * state across truncated-BPTT windows is the caller's (detach it between windows).
   */
  forward(x: Tensor, state?: RecurrentState | null, opts: RecurrentForwardOptions = {}): RecurrentResult {
    const where = `${layerName(this.kind)}.forward`;
    if (x.rank !== 3 || x.shape[2] !== this.inputSize) {
      throw new ShapeError(`${where}: 'x' must be [T, B, D] with D = ${this.inputSize} (inputSize), got ${fmtShape(x.shape)}`);
    }
    const [T, B] = x.shape;
    if (T === 0 || B === 0) throw new ShapeError(`${where}: 'x' ${fmtShape(x.shape)} needs at least one time step and one batch entry`);
    const H = this.hiddenSize, dirs = this.directions, LD = this.numLayers * dirs;
    const lengths = checkLengths(where, opts.lengths, T, B);
    if (state) this.checkState(where, state, B);
    const finals: CellState[] = [];
    let input = x;
    for (let l = 0; l < this.numLayers; l++) {
      const outputs: Tensor[] = [];
      for (let d = 0; d < dirs; d++) {
        const cell = this.cell(l, d);
        const k = l * dirs + d;
        const pick = (s: Tensor): Tensor => reshape(slice(s, [k, 0, 0], [k + 1, B, H]), [B, H]);
        const s0: CellState = state ? { h: pick(state.h), ...(state.c ? { c: pick(state.c) } : {}) } : cell.zeroState(B);
        const r = this.runDirection(cell, input, s0, d === 1, lengths);
        outputs.push(r.output);
        finals.push(r.state);
      }
      input = dirs === 1 ? outputs[0] : concat(outputs, 2); // [T, B, dirs·H]
      if (l < this.numLayers - 1 && this.dropout > 0 && this.training) input = dropoutOp(input, this.dropout, true, this._generator);
    }
    const stackStates = (xs: Tensor[]): Tensor => (LD === 1 ? unsqueeze(xs[0], 0) : concat(xs.map((t) => unsqueeze(t, 0)), 0));
    const h = stackStates(finals.map((s) => s.h)); // [L·dirs, B, H]
    return { output: input, state: this.kind === 'lstm' ? { h, c: stackStates(finals.map((s) => s.c!)) } : { h } };
  }

  private runDirection(cell: RecurrentCell, input: Tensor, s0: CellState, reverse: boolean, lengths: readonly number[] | null): { output: Tensor; state: CellState } {
    if (this.implementation === 'composed') {
      const xp = cell.projectInput(input); // [T, B, G·H]: every step's input product in one matmul
      return unroll(cell, xp, s0, { reverse, lengths });
    }
    // The same input product (without the bias, which the primitive adds inside its gate loop), then the
    // whole sequence in one primitive.
    const w = cell.weights;
    const xp = matmul(input, w.weightIh, false, true); // [T, B, G·H]
    const r = recurrentSequence(this.kind, { xp, wHh: w.weightHh, bIh: w.biasIh, bHh: w.biasHh, h0: s0.h, c0: s0.c ?? null }, { reverse, lengths });
    return { output: r.output, state: r.c ? { h: r.h, c: r.c } : { h: r.h } };
  }

  private checkState(where: string, state: RecurrentState, B: number): void {
    const want = [this.numLayers * this.directions, B, this.hiddenSize];
    const check = (name: string, t: Tensor | undefined): void => {
      if (!t || t.rank !== 3 || t.shape.some((v, i) => v !== want[i])) {
        throw new ShapeError(`${where}: 'state.${name}' must be ${fmtShape(want)} ([L·dirs, B, H]), got ${t ? fmtShape(t.shape) : 'nothing'}`);
      }
    };
    check('h', state.h);
    if (this.kind === 'lstm') check('c', state.c);
    else if (state.c) throw new LoomError(`${where}: 'state.c' is only for LSTM; a ${this.kind} state has h only`);
  }
}

/** torch.nn.RNN: h' = tanh(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh) (or relu, options.nonlinearity). */
export class RNN extends RecurrentLayer {
  constructor(options: RecurrentOptions & { nonlinearity?: 'tanh' | 'relu' }) {
    super(rnnKind('RNN', options?.nonlinearity), options);
  }
}

/** torch.nn.LSTM: gates i, f, g, o; c' = f ⊙ c + i ⊙ g; h' = o ⊙ tanh(c'). */
export class LSTM extends RecurrentLayer {
  constructor(options: RecurrentOptions) {
    super('lstm', options);
  }
}

/** torch.nn.GRU: gates r, z, n with n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); h' = (1 - z) ⊙ n + z ⊙ h. */
export class GRU extends RecurrentLayer {
  constructor(options: RecurrentOptions) {
    super('gru', options);
  }
}

/** PyTorch's parameter names for layer l, direction d. */
export function parameterNames(layer: number, direction: number): { weightIh: string; weightHh: string; biasIh: string; biasHh: string } {
  const s = `_l${layer}${direction === 1 ? '_reverse' : ''}`;
  return { weightIh: `weight_ih${s}`, weightHh: `weight_hh${s}`, biasIh: `bias_ih${s}`, biasHh: `bias_hh${s}` };
}

function layerName(kind: CellKind): string {
  return kind === 'lstm' ? 'LSTM' : kind === 'gru' ? 'GRU' : 'RNN';
}

function checkBool(where: string, key: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new LoomError(`${where}: options.${key} must be a boolean, got ${String(v)}`);
  return v;
}

