/*
 * A sequence classifier (many-to-one): ids [T, B] → embedding → recurrent layers → one vector per
 * sequence → linear → class logits [B, C]. The vector is
 *   'last': the top layer's final hidden state (both directions' concatenated when bidirectional; with
 *           lengths, the state after each entry's last valid step, as with packed sequences);
 *   'mean': the mean of the top layer's outputs over each entry's valid steps;
 *   'max':  their elementwise maximum over the valid steps.
 */
import {
  Linear, LoomError, Module, ShapeError, concat, crossEntropy, div, dropout, fmtShape, max, reshape, slice, sum, tensor,
  where,
  type DType, type Embedding, type Generator, type Tensor,
} from '@loom/core';
import type { CellKind, RecurrentLayer } from './recurrent/index.js';
import { argmax } from './generate.js';
import { stripUndefined } from './checks.js';
import { buildEmbeddedRnn, checkEmbeddedRnnConfig, runEmbeddedRnn, type SequenceOptions } from './embedded-rnn.js';

export type Pooling = 'last' | 'mean' | 'max';

export interface SequenceClassifierConfig {
  vocabSize: number;
  embedSize: number;
  hiddenSize: number;
  numClasses: number;
  cell: CellKind;
  /** Default 1. */
  numLayers?: number;
  /** How the sequence becomes one vector (see above). Default 'last'. */
  pooling?: Pooling;
  /** Default false. */
  bidirectional?: boolean;
  /** On the embeddings, between recurrent layers and on the pooled vector. Default 0. */
  dropout?: number;
  /** Default 0. */
  seed?: number;
  /** Default float32 (float64 for gradient checks). */
  dtype?: DType;
}

export const SEQUENCE_CLASSIFIER_DEFAULTS = {
  numLayers: 1,
  pooling: 'last' as Pooling,
  bidirectional: false,
  dropout: 0,
  seed: 0,
  dtype: 'float32' as DType,
} satisfies Partial<SequenceClassifierConfig>;

/**
 * Parameters: embedding.weight [V, E] ~ N(0, 1) (PyTorch's nn.Embedding), rnn.* (the recurrent layers'
 * default init), classifier.weight [C, dirs·H] and classifier.bias [C] (PyTorch's nn.Linear default).
 */
export class SequenceClassifier extends Module {
  readonly config: Required<SequenceClassifierConfig>;
  embedding: Embedding;
  rnn: RecurrentLayer;
  classifier: Linear;
  readonly generator: Generator;

  constructor(config: SequenceClassifierConfig) {
    super();
    const where = 'SequenceClassifier';
    const c: Required<SequenceClassifierConfig> = { ...SEQUENCE_CLASSIFIER_DEFAULTS, ...stripUndefined(config) };
    checkEmbeddedRnnConfig(where, c, ['numClasses']);
    if (!['last', 'mean', 'max'].includes(c.pooling)) throw new LoomError(`${where}: config.pooling must be 'last', 'mean' or 'max', got ${String(c.pooling)}`);
    this.config = c;
    ({ generator: this.generator, embedding: this.embedding, rnn: this.rnn } = buildEmbeddedRnn(c));
    this.classifier = new Linear(c.hiddenSize * this.rnn.directions, c.numClasses, { dtype: c.dtype, generator: this.generator });
  }

  /** The pooled sequence vectors [B, dirs·H], before the output dropout. */
  encode(ids: Tensor, opts: SequenceOptions = {}): Tensor {
    const { output, state, lengths } = runEmbeddedRnn(this, 'SequenceClassifier.forward', ids, opts); // output [T, B, dirs·H]
    return poolSequence(this.config.pooling, output, state.h, lengths, this.rnn.directions);
  }

  /** Class logits [B, C]. */
  forward(ids: Tensor, opts: SequenceOptions = {}): Tensor {
    const pooled = dropout(this.encode(ids, opts), this.config.dropout, this.training, this.generator);
    return this.classifier.forward(pooled);
  }

  /** Mean cross-entropy against int32 labels [B]. */
  loss(ids: Tensor, labels: Tensor, opts: SequenceOptions = {}): Tensor {
    if (labels.rank !== 1 || labels.shape[0] !== ids.shape[1]) {
      throw new ShapeError(`SequenceClassifier.loss: 'labels' must be [B] with B = ${ids.shape[1]}, got ${fmtShape(labels.shape)}`);
    }
    return crossEntropy(this.forward(ids, opts), labels);
  }

  /** The most likely class of each sequence. */
  predict(ids: Tensor, opts: SequenceOptions = {}): number[] {
    const logits = this.forward(ids, opts).data;
    const C = this.config.numClasses;
    return Array.from({ length: ids.shape[1] }, (_, b) => argmax(logits, b * C, C));
  }
}

/**
 * One vector per sequence from the outputs [T, B, dirs·H] of a recurrent layer, or from its final hidden
 * state h [L·dirs, B, H] for 'last'. Outputs past an entry's length are zeros (the layer's packed-sequence
 * contract), which the mean relies on; the max masks them to -∞ instead.
 */
export function poolSequence(pooling: Pooling, output: Tensor, h: Tensor, lengths: readonly number[] | null, directions: number): Tensor {
  const [T, B] = output.shape;
  switch (pooling) {
    case 'last': {
      // The top layer's directions are the last `directions` rows of h (layer-major, direction-minor).
      const LD = h.shape[0], H = h.shape[2];
      const top = slice(h, [LD - directions, 0, 0], [LD, B, H]); // [dirs, B, H]
      if (directions === 1) return reshape(top, [B, H]);
      const parts = Array.from({ length: directions }, (_, d) => reshape(slice(top, [d, 0, 0], [d + 1, B, H]), [B, H]));
      return concat(parts, 1); // [B, dirs·H]
    }
    case 'mean': {
      const total = sum(output, 0); // [B, dirs·H]
      const counts = lengths ? lengths.map((n) => Math.max(n, 1)) : new Array<number>(B).fill(T);
      return div(total, tensor(counts, [B, 1], { dtype: output.dtype, backend: output.backend }));
    }
    case 'max': {
      if (!lengths) return max(output, 0);
      const pad = new Array<number>(T * B);
      for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) pad[t * B + b] = t >= lengths[b] ? 1 : 0;
      const mask = tensor(pad, [T, B, 1], { dtype: output.dtype, backend: output.backend });
      return max(where(mask, -Infinity, output), 0); // [B, dirs·H]
    }
  }
}
