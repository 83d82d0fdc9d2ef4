/*
 * A causal self-attention language model (GPT-style, Radford et al. 2018) from SelfAttentionBlocks:
 *
 *   ids [T, B] → token embedding + learned position embedding [T, 1, E] → dropout
 *     → numLayers × SelfAttentionBlock (causal mask) → final layer norm (pre-norm blocks only)
 *     → linear → logits [T, B, V]
 *
 * Its "state" between calls is the context itself (the tokens seen so far, at most maxLength of them):
 * each call re-reads the context (no key/value cache), so it fits generate.ts's StepModel and `sample`.
 */
import {
  Embedding, Generator, Linear, LoomError, Module, Parameter, add, crossEntropy, dropout, init, reshape, slice, tensor,
  type DType, type Tensor,
} from '@loom/core';
import { SelfAttentionBlock } from './block.js';
import { LayerNorm } from './layer-norm.js';
import { checkDropout, checkDtype, checkIds, checkPositiveInts, checkSeed, checkBoolean, stripUndefined } from '../checks.js';

export interface SelfAttentionLMConfig {
  vocabSize: number;
  /** E */
  embedSize: number;
  /** nh per block; must divide embedSize. */
  numHeads: number;
  numLayers: number;
  /** Longest context (positions learned). */
  maxLength: number;
  /** Feed-forward hidden size. Default 4·embedSize. */
  ffnSize?: number;
  /** On the embeddings and inside every block. Default 0. */
  dropout?: number;
  /** Pre-norm blocks and a final layer norm (true, GPT-2) or post-norm blocks (false). Default true. */
  normFirst?: boolean;
  /** Default 0. */
  seed?: number;
  /** Default float32. */
  dtype?: DType;
}

export const SELF_ATTENTION_LM_DEFAULTS = {
  dropout: 0,
  normFirst: true,
  seed: 0,
  dtype: 'float32' as DType,
} satisfies Partial<SelfAttentionLMConfig>;

/** What a self-attention model carries between calls: the last ≤ maxLength tokens, [T, B] int32. */
export interface AttentionContext {
  ids: Tensor;
}

/**
 * Parameters, in namedParameters() order: embedding.weight [V, E] and position [maxLength, E], both
 * ~ N(0, 0.02²) (GPT-2); layers.{i}.* (SelfAttentionBlock); norm.* (pre-norm only); output.weight [V, E],
 * output.bias [V] (Linear's default init).
 */
export class SelfAttentionLM extends Module {
  readonly config: Required<SelfAttentionLMConfig>;
  embedding: Embedding;
  position: Parameter;
  layers: SelfAttentionBlock[];
  norm: LayerNorm | null;
  output: Linear;
  readonly generator: Generator;

  constructor(config: SelfAttentionLMConfig) {
    super();
    const where = 'SelfAttentionLM';
    const c = { ...SELF_ATTENTION_LM_DEFAULTS, ffnSize: 4 * config.embedSize, ...stripUndefined(config) } as Required<SelfAttentionLMConfig>;
    checkPositiveInts(where, c, ['vocabSize', 'embedSize', 'numHeads', 'numLayers', 'maxLength', 'ffnSize']);
    if (c.embedSize % c.numHeads !== 0) throw new LoomError(`${where}: config.embedSize (${c.embedSize}) must be divisible by config.numHeads (${c.numHeads})`);
    checkDropout(where, c.dropout);
    checkBoolean(where, 'normFirst', c.normFirst);
    checkSeed(where, c.seed);
    checkDtype(where, c.dtype);
    this.config = c;
    const g = (this.generator = new Generator(c.seed));
    const { embedSize: E, dtype } = c;
    this.embedding = new Embedding(c.vocabSize, E, { dtype, generator: g });
    init.normal(this.embedding.weight, 0, 0.02, g);
    this.position = init.normal(new Parameter([c.maxLength, E], { dtype }), 0, 0.02, g) as Parameter;
    this.layers = Array.from({ length: c.numLayers }, () => new SelfAttentionBlock({
      embedSize: E, numHeads: c.numHeads, ffnSize: c.ffnSize, dropout: c.dropout, normFirst: c.normFirst, generator: g, dtype,
    }));
    this.norm = c.normFirst ? new LayerNorm(E, { dtype }) : null;
    this.output = new Linear(E, c.vocabSize, { dtype, generator: g });
  }

  /**
   * Logits [T, B, V] for the tokens ids [T, B] (each position sees itself and the positions before it),
   * after the context (earlier tokens, the state of the previous call) when given. The new state is the
   * context plus ids, cut to the last maxLength tokens; the oldest tokens fall out of view.
   */
  forward(ids: Tensor, context?: AttentionContext | null): { logits: Tensor; state: AttentionContext } {
    const where = 'SelfAttentionLM.forward';
    checkIds(where, 'ids', ids);
    const [T, B] = ids.shape;
    const L = this.config.maxLength;
    if (T > L) throw new LoomError(`${where}: 'ids' has ${T} steps, more than config.maxLength (${L})`);
    let all = ids;
    if (context) {
      checkIds(where, 'context.ids', context.ids);
      if (context.ids.shape[1] !== B) throw new LoomError(`${where}: 'context.ids' has batch size ${context.ids.shape[1]}, 'ids' ${B}`);
      const prev = context.ids.data, now = ids.data;
      const keep = Math.min(context.ids.shape[0], L - T);
      const joined = new Int32Array((keep + T) * B);
      joined.set(prev.subarray(prev.length - keep * B));
      joined.set(now, keep * B);
      all = tensor(joined, [keep + T, B], { dtype: 'int32' });
    }
    const h = this.features(all); // [Tall, B, E]
    const Tall = all.shape[0];
    const last = Tall === T ? h : slice(h, [Tall - T, 0, 0], [Tall, B, this.config.embedSize]); // [T, B, E]
    return { logits: this.output.forward(last), state: { ids: all } };
  }

  /** The last block's (normalised) outputs [T, B, E] for ids [T, B], T ≤ maxLength. */
  features(ids: Tensor): Tensor {
    const [T] = ids.shape;
    const E = this.config.embedSize;
    const pos = reshape(slice(this.position, [0, 0], [T, E]), [T, 1, E]);
    let x = dropout(add(this.embedding.forward(ids), pos), this.config.dropout, this.training, this.generator); // [T, B, E]
    for (const layer of this.layers) x = layer.forward(x, { causal: true }).output;
    return this.norm ? this.norm.forward(x) : x;
  }

  /** Mean cross-entropy of predicting targets [T, B] (targets equal to ignoreIndex are skipped). */
  loss(ids: Tensor, targets: Tensor, opts: { ignoreIndex?: number } = {}): Tensor {
    return crossEntropy(this.forward(ids).logits, targets, { ignoreIndex: opts.ignoreIndex });
  }
}
