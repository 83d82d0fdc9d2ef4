// End-To-End Memory Networks (Sukhbaatar et al. 2015) and their bAbI pipeline (docs/memnn.md).
export {
  MemN2N, positionEncoding, MEMN2N_DEFAULTS, type MemN2NConfig, type WeightTying, type SentenceEncoding, type EmptyMemories,
} from './model.js';
export { makeBatch, type MemN2NExample, type MemN2NBatch, type MemN2NBatchOptions } from './batch.js';
export { buildBabiVocabulary, encodeBabi, tokenizeBabi, answerLabel, sentenceSize, NIL_WORD, type StoryQuestion } from './vocab.js';
export {
  trainMemN2N, evaluateMemN2N, epochBatches, MEMN2N_TRAIN_DEFAULTS,
  type MemN2NTrainConfig, type MemN2NEpochLog, type MemN2NTrainResult, type MemN2NEvaluation,
} from './train.js';
