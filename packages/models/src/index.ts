/**
 * @loom/models: models on @loom/core.
 */
// Recurrent cells and layers (docs/recurrent.md).
export * from './recurrent/index.js';
// Models on the recurrent layers, generation and embedding probes (docs/models.md).
export {
  RNNLanguageModel, detachState, resolveLanguageModelConfig, LANGUAGE_MODEL_DEFAULTS,
  type LanguageModelConfig, type ResolvedLanguageModelConfig,
} from './lm.js';
export {
  SequenceClassifier, poolSequence, SEQUENCE_CLASSIFIER_DEFAULTS,
  type SequenceClassifierConfig, type Pooling,
} from './classifier.js';
export type { SequenceOptions } from './embedded-rnn.js';
export { SequenceTagger, SEQUENCE_TAGGER_DEFAULTS, IGNORE_TAG, type SequenceTaggerConfig } from './tagger.js';
export {
  Seq2Seq, selectBatch, selectState, SEQ2SEQ_DEFAULTS,
  type Seq2SeqConfig, type Seq2SeqOptions, type EncoderOutput, type DecodeOptions, type BeamSearchOptions, type Hypothesis,
} from './seq2seq.js';
export { SequenceAutoencoder, type SequenceAutoencoderConfig, type AutoencoderOptions } from './autoencoder.js';
export { sample, pickToken, argmax, type PickOptions, type SampleOptions, type StepModel } from './generate.js';
export { nearestNeighbours, analogy, cosineSimilarity, type Neighbour } from './probes.js';
export { padSequences } from './checks.js';
// End-To-End Memory Networks on bAbI (docs/memnn.md).
export * from './memnn/index.js';
// Recursive networks over binary trees: tree RNN, constituency Tree-LSTM, per-node classifier (docs/tree.md).
export * from './tree/index.js';
// Attention: scaled dot-product, multi-head, self-attention blocks, Bahdanau attention in the encoder-decoder (docs/attention.md).
export * from './attention/index.js';
