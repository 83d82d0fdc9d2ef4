// @loom/data: corpora of any size, tokenizers, vocabularies, token files, TBPTT lanes, dataset readers.
// Listed in the order data flows: files -> counts/vocabulary -> tokenizer -> token file -> lanes.
export { DataError, type DataErrorLocation } from './errors.js';
export { progressPrinter, type ProgressCallback, type ProgressEvent } from './progress.js';
export { Rng } from './rng.js';
export {
  decodeUtf8, fileSize, forEachTextChunk, globToRegExp, isSpace, listTextFiles, readTextFile, splitLines,
  type ListTextFilesOptions, type TextChunkOptions,
} from './text.js';
export { BOS, EOS, PAD, UNK, TokenCounts, Vocabulary, type VocabularyOptions } from './vocabulary.js';
export {
  CharTokenizer, TokenBuffer, WordTokenizer,
  type StreamEncoder, type Tokenizer, type WordTokenizerOptions,
} from './tokenizers.js';
export { BPE_HEADER, BPE_MAX_VOCAB, BpeTokenizer, forEachPiece, type BpeTrainOptions } from './bpe.js';
export {
  buildVocabulary, countTokens, countWordsReference, encodeCorpus,
  type CountOptions, type EncodeCorpusOptions, type EncodeCorpusResult,
} from './corpus.js';
export {
  ArrayTokenSource, TOKEN_FILE_HEADER_BYTES, TOKEN_FILE_MAGIC, TOKEN_FILE_VERSION, TokenFile, TokenFileWriter,
  bytesPerTokenFor, decodeHeader, encodeHeader,
  type OpenTokenFileOptions, type TokenFileHeader, type TokenSource, type VocabularyIdentity,
} from './token-file.js';
export { LaneBatcher, type LaneBatcherOptions, type VariableLengthOptions, type Window } from './lanes.js';
export {
  BABI_TASKS, babiExamples, babiTask, babiTaskFile, parseBabi, readBabi, readBabiTask,
  type BabiExample, type BabiLine, type BabiStory,
} from './babi.js';
export { forEachNode, leaves, parseTree, parseTrees, phrases, readTrees, treeToString, type ParseTreeOptions, type Tree } from './trees.js';
export { parseParallel, parseTsvPairs, readParallel, readTsvPairs, type SentencePair } from './pairs.js';
