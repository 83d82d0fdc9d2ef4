/*
 * A sequence tagger (synchronous many-to-many): one label per input step.
 *   ids [T, B] → embedding [T, B, E] → recurrent layers [T, B, dirs·H] → linear → tag logits [T, B, C]
 * With bidirectional layers every step sees the whole sentence (part-of-speech tagging, named entities);
 * unidirectional, a tag depends only on the prefix (streaming labelling).
 */
import {
  Linear, Module, ShapeError, crossEntropy, dropout, fmtShape, linear, reshape, tensor,
  type DType, type Embedding, type Generator, type Tensor,
} from '@loom/core';
import type { CellKind, RecurrentLayer } from './recurrent/index.js';
import { argmax } from './generate.js';
import { stripUndefined } from './checks.js';
import { buildEmbeddedRnn, checkEmbeddedRnnConfig, runEmbeddedRnn, type SequenceOptions } from './embedded-rnn.js';

export interface SequenceTaggerConfig {
  vocabSize: number;
  embedSize: number;
  hiddenSize: number;
  numTags: number;
  cell: CellKind;
  /** Default 1. */
  numLayers?: number;
  /** Default false. */
  bidirectional?: boolean;
  /** On the embeddings, between recurrent layers and before the output layer. Default 0. */
  dropout?: number;
  /** Default 0. */
  seed?: number;
  /** Default float32 (float64 for gradient checks). */
  dtype?: DType;
}

export const SEQUENCE_TAGGER_DEFAULTS = {
  numLayers: 1,
  bidirectional: false,
  dropout: 0,
  seed: 0,
  dtype: 'float32' as DType,
} satisfies Partial<SequenceTaggerConfig>;

/** Targets equal to this are not scored (PyTorch's default ignore_index); `loss` sets padding to it. */
export const IGNORE_TAG = -100;

/**
 * Parameters: embedding.weight [V, E] ~ N(0, 1), rnn.* (the recurrent layers' default), output.weight
 * [C, dirs·H] and output.bias [C] (nn.Linear's default).
 */
export class SequenceTagger extends Module {
  readonly config: Required<SequenceTaggerConfig>;
  embedding: Embedding;
  rnn: RecurrentLayer;
  output: Linear;
  readonly generator: Generator;

  constructor(config: SequenceTaggerConfig) {
    super();
    const where = 'SequenceTagger';
    const c: Required<SequenceTaggerConfig> = { ...SEQUENCE_TAGGER_DEFAULTS, ...stripUndefined(config) };
    checkEmbeddedRnnConfig(where, c, ['numTags']);
    this.config = c;
    ({ generator: this.generator, embedding: this.embedding, rnn: this.rnn } = buildEmbeddedRnn(c));
    this.output = new Linear(c.hiddenSize * this.rnn.directions, c.numTags, { dtype: c.dtype, generator: this.generator });
  }

  /** Tag logits [T, B, C]; rows past an entry's length are the output layer's bias (they score nothing). */
  forward(ids: Tensor, opts: SequenceOptions = {}): Tensor {
    const { output } = runEmbeddedRnn(this, 'SequenceTagger.forward', ids, opts); // [T, B, dirs·H]
    const [T, B] = ids.shape;
    const h = dropout(output, this.config.dropout, this.training, this.generator);
    const DH = h.shape[2];
    const logits = linear(reshape(h, [T * B, DH]), this.output.weight, this.output.bias); // [T·B, C]: one product
    return reshape(logits, [T, B, this.config.numTags]);
  }

  /** Mean cross-entropy over the valid positions, against int32 tags [T, B] (positions past lengths ignored). */
  loss(ids: Tensor, tags: Tensor, opts: SequenceOptions = {}): Tensor {
    if (tags.rank !== 2 || tags.shape[0] !== ids.shape[0] || tags.shape[1] !== ids.shape[1]) {
      throw new ShapeError(`SequenceTagger.loss: 'tags' must have the shape of 'ids' ${fmtShape(ids.shape)} ([T, B]), got ${fmtShape(tags.shape)}`);
    }
    const logits = this.forward(ids, opts);
    return crossEntropy(logits, maskPastLengths(tags, opts.lengths ?? null), { ignoreIndex: IGNORE_TAG });
  }

  /** The most likely tag at each valid step of each entry: one array per batch entry. */
  predict(ids: Tensor, opts: SequenceOptions = {}): number[][] {
    const logits = this.forward(ids, opts).data;
    const [T, B] = ids.shape, C = this.config.numTags;
    return Array.from({ length: B }, (_, b) =>
      Array.from({ length: opts.lengths ? opts.lengths[b] : T }, (_, t) => argmax(logits, (t * B + b) * C, C)));
  }
}

/** targets [T, B] with the positions at or past each entry's length set to IGNORE_TAG. */
function maskPastLengths(targets: Tensor, lengths: readonly number[] | null): Tensor {
  if (!lengths) return targets;
  const [T, B] = targets.shape;
  const out = Int32Array.from(targets.data);
  for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lengths[b]) out[t * B + b] = IGNORE_TAG;
  return tensor(out, [T, B], { dtype: 'int32', backend: targets.backend });
}
