/*
 * The front the sequence classifier and the sequence tagger share:
 *   ids [T, B] → embedding [T, B, E] → dropout → recurrent layers → outputs [T, B, dirs·H]
 * Functions rather than a base class or a sub-module, so that each model keeps `embedding` and `rnn` as
 * its own fields, and with them its parameter names (embedding.weight, rnn.*) and its checkpoints.
 */
import { Embedding, Generator, dropout, type DType, type Tensor } from '@loom/core';
import { RecurrentLayer, type CellKind, type RecurrentResult } from './recurrent/index.js';
import {
  checkBoolean, checkCell, checkDropout, checkDtype, checkIds, checkPositiveInts, checkSeed, checkSequenceLengths,
} from './checks.js';

/** Options of a forward pass over a padded batch. */
export interface SequenceOptions {
  /** Valid steps of each batch entry (1 ≤ length ≤ T); positions past them are padding. Default: all T. */
  lengths?: readonly number[] | null;
}

/** The config keys of the front, defaults applied. */
export interface EmbeddedRnnConfig {
  vocabSize: number;
  embedSize: number;
  hiddenSize: number;
  cell: CellKind;
  numLayers: number;
  bidirectional: boolean;
  dropout: number;
  seed: number;
  dtype: DType;
}

/** Checks the front's keys, and `sizes`, the model's own positive integers (numClasses, numTags). */
export function checkEmbeddedRnnConfig<C extends EmbeddedRnnConfig>(where: string, c: C, sizes: readonly (keyof C & string)[]): void {
  checkPositiveInts(where, c, ['vocabSize', 'embedSize', 'hiddenSize', ...sizes, 'numLayers']);
  checkCell(where, c.cell);
  checkBoolean(where, 'bidirectional', c.bidirectional);
  checkDropout(where, c.dropout);
  checkSeed(where, c.seed);
  checkDtype(where, c.dtype);
}

/**
 * The model's generator, then the embedding and the recurrent layers drawn from it in that order; the
 * model's output layer draws next.
 */
export function buildEmbeddedRnn(c: EmbeddedRnnConfig): { generator: Generator; embedding: Embedding; rnn: RecurrentLayer } {
  const generator = new Generator(c.seed);
  const embedding = new Embedding(c.vocabSize, c.embedSize, { dtype: c.dtype, generator });
  const rnn = new RecurrentLayer(c.cell, {
    inputSize: c.embedSize, hiddenSize: c.hiddenSize, numLayers: c.numLayers, bidirectional: c.bidirectional,
    dropout: c.dropout, generator, dtype: c.dtype,
  });
  return { generator, embedding, rnn };
}

/** What runEmbeddedRnn reads of a model. */
export interface EmbeddedRnnModel {
  readonly config: { readonly dropout: number };
  readonly embedding: Embedding;
  readonly rnn: RecurrentLayer;
  readonly generator: Generator;
  readonly training: boolean;
}

/**
 * Checks ids [T, B] and opts.lengths (naming `where`), then embeds with dropout and runs the layers from
 * a zero state: output [T, B, dirs·H] (zero past each entry's length), the final state, and the lengths.
 */
export function runEmbeddedRnn(
  m: EmbeddedRnnModel, where: string, ids: Tensor, opts: SequenceOptions,
): RecurrentResult & { lengths: readonly number[] | null } {
  checkIds(where, 'ids', ids);
  const [T, B] = ids.shape;
  const lengths = checkSequenceLengths(where, opts.lengths, T, B);
  const x = dropout(m.embedding.forward(ids), m.config.dropout, m.training, m.generator); // [T, B, E]
  const { output, state } = m.rnn.forward(x, null, { lengths }); // output [T, B, dirs·H]
  return { output, state, lengths };
}
