/*
 * A recurrent language model (Zaremba, Sutskever & Vinyals 2014; PyTorch's word_language_model):
 *
 *   ids [T, B] → embedding [T, B, E] → dropout → stacked recurrent layers (dropout between them)
 *     → [T, B, H] → dropout → one projection to the vocabulary over [T·B, H] → logits [T, B, V]
 *
 * Time-major like the recurrent layers. The state after the last step is returned so that training with
 * truncated backpropagation through time can carry it into the next window (detach it first:
 * detachState). The projection is one matrix product over all T·B positions, not one per step: it is the
 * largest product of a word model (V = 10k), and one big GEMM runs several times faster than T small ones.
 */
import {
  Embedding, Generator, Linear, LoomError, Module, ShapeError, crossEntropy, dropout, fmtShape, init, linear, reshape,
  type DType, type Tensor,
} from '@loom/core';
import { RecurrentLayer, type CellKind, type RecurrentState } from './recurrent/index.js';
import { checkCell, checkDropout, checkDtype, checkIds, checkPositiveInts, checkSeed, stripUndefined } from './checks.js';

export interface LanguageModelConfig {
  vocabSize: number;
  embedSize: number;
  hiddenSize: number;
  numLayers: number;
  cell: CellKind;
  /** Dropout probability, Zaremba-style: on the embeddings, between recurrent layers and before the
   *  projection (active in training mode only). Default 0. */
  dropout?: number;
  /** Share the embedding table with the projection (Press & Wolf 2017; Inan et al. 2017). Needs
   *  embedSize === hiddenSize. Default false. */
  tieWeights?: boolean;
  /** Seeds the model's generator (initialisation, then dropout masks). Default 0. */
  seed?: number;
  /** float32 for training; float64 for gradient checks. Default float32. */
  dtype?: DType;
}

/** The optional keys' defaults, beside the type. */
export const LANGUAGE_MODEL_DEFAULTS = {
  dropout: 0,
  tieWeights: false,
  seed: 0,
  dtype: 'float32' as DType,
} satisfies Partial<LanguageModelConfig>;

export type ResolvedLanguageModelConfig = Required<LanguageModelConfig>;

/**
 * Parameters, in namedParameters() order (with PyTorch word_language_model's names in brackets):
 *   embedding.weight [V, E]      (encoder.weight)  ~ U(-0.1, 0.1)
 *   rnn.weight_ih_l0 [G·H, E] … rnn.bias_hh_l{L-1}  ~ U(-1/√H, 1/√H), the recurrent layers' default
 *   decoder.weight [V, H]        ~ U(-0.1, 0.1); absent when tied (it is embedding.weight)
 *   decoder.bias [V]             = 0
 * The ±0.1 range and the zero bias are Zaremba's and PyTorch's example's choices: the first logits are
 * near zero, so the initial loss is close to ln V.
 */
export class RNNLanguageModel extends Module {
  readonly config: ResolvedLanguageModelConfig;
  embedding: Embedding;
  rnn: RecurrentLayer;
  decoder: Linear;
  /** Draws the initial weights and then every dropout mask. Reseed it per worker for different masks. */
  readonly generator: Generator;

  constructor(config: LanguageModelConfig) {
    super();
    this.config = resolveLanguageModelConfig(config);
    const { vocabSize: V, embedSize: E, hiddenSize: H, numLayers, cell, dropout: p, tieWeights, seed, dtype } = this.config;
    this.generator = new Generator(seed);
    const g = this.generator;
    this.embedding = new Embedding(V, E, { dtype, generator: g });
    init.uniform(this.embedding.weight, -0.1, 0.1, g);
    this.rnn = new RecurrentLayer(cell, { inputSize: E, hiddenSize: H, numLayers, dropout: p, generator: g, dtype });
    this.decoder = new Linear(H, V, { dtype, generator: g });
    init.uniform(this.decoder.weight, -0.1, 0.1, g);
    init.constant(this.decoder.bias!, 0);
    if (tieWeights) this.decoder.weight = this.embedding.weight; // listed once, as embedding.weight
  }

  /** The recurrent features: ids [T, B] → output [T, B, H] (after the output dropout) and the final state. */
  features(ids: Tensor, state?: RecurrentState | null): { output: Tensor; state: RecurrentState } {
    checkIds('RNNLanguageModel.forward', 'ids', ids);
    const { dropout: p } = this.config;
    let x = this.embedding.forward(ids); // [T, B, E]
    x = dropout(x, p, this.training, this.generator);
    const r = this.rnn.forward(x, state ?? null); // output [T, B, H]
    return { output: dropout(r.output, p, this.training, this.generator), state: r.state };
  }

  /** The projection to the vocabulary: [T, B, H] → logits [T, B, V], one product over the T·B rows. */
  project(output: Tensor): Tensor {
    const [T, B, H] = output.shape;
    const flat = reshape(output, [T * B, H]); // [T·B, H]
    const logits = linear(flat, this.decoder.weight, this.decoder.bias); // [T·B, V]
    return reshape(logits, [T, B, this.config.vocabSize]);
  }

  forward(ids: Tensor, state?: RecurrentState | null): { logits: Tensor; state: RecurrentState } {
    const f = this.features(ids, state);
    return { logits: this.project(f.output), state: f.state };
  }

  /**
   * Mean cross-entropy of predicting targets [T, B] (usually ids shifted by one) from ids [T, B]. The
   * final state comes back for the next window; detach it before carrying it over.
   */
  loss(ids: Tensor, targets: Tensor, state?: RecurrentState | null): { loss: Tensor; state: RecurrentState } {
    checkIds('RNNLanguageModel.loss', 'targets', targets);
    if (targets.shape[0] !== ids.shape[0] || targets.shape[1] !== ids.shape[1]) {
      throw new ShapeError(`RNNLanguageModel.loss: 'targets' ${fmtShape(targets.shape)} must have the shape of 'ids' ${fmtShape(ids.shape)} ([T, B])`);
    }
    const { logits, state: next } = this.forward(ids, state);
    return { loss: crossEntropy(logits, targets), state: next };
  }

  zeroState(batchSize: number): RecurrentState {
    return this.rnn.zeroState(batchSize);
  }
}

/** A state cut from the graph that made it (the step between truncated-BPTT windows). */
export function detachState(s: RecurrentState): RecurrentState {
  return s.c ? { h: s.h.detach(), c: s.c.detach() } : { h: s.h.detach() };
}

export function resolveLanguageModelConfig(config: LanguageModelConfig): ResolvedLanguageModelConfig {
  const where = 'RNNLanguageModel';
  if (config === null || typeof config !== 'object') throw new LoomError(`${where}: config must be an object`);
  const c: ResolvedLanguageModelConfig = { ...LANGUAGE_MODEL_DEFAULTS, ...stripUndefined(config) };
  checkPositiveInts(where, c, ['vocabSize', 'embedSize', 'hiddenSize', 'numLayers']);
  checkCell(where, c.cell);
  checkDropout(where, c.dropout);
  if (typeof c.tieWeights !== 'boolean') throw new LoomError(`${where}: config.tieWeights must be a boolean, got ${String(c.tieWeights)}`);
  if (c.tieWeights && c.embedSize !== c.hiddenSize) {
    throw new LoomError(`${where}: config.tieWeights needs embedSize === hiddenSize (the projection [V, H] shares the embedding [V, E]), got embedSize ${c.embedSize} and hiddenSize ${c.hiddenSize}`);
  }
  checkSeed(where, c.seed);
  checkDtype(where, c.dtype);
  return c;
}
