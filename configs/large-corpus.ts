// Template for a corpus of many large text files (a folder or glob of any total size). Preparation
// streams the files in 1 MiB chunks (memory bounded by the vocabulary, not the corpus), writes token
// files once into .cache/corpora/<hash>/ and later runs reuse them; training reads each window from the
// token file by offset, so the corpus never sits in memory.
//
//   pnpm train large-corpus --data.root=/data/my-corpus
//   pnpm train large-corpus --data.train='/data/books/**/*.txt' --data.valid=/data/heldout.txt
//
// Copy this file and edit it for a corpus you use often. BPE keeps the vocabulary small on open text;
// switch to --data.tokenizer=word --data.maxVocab=50000 for whitespace words.
import type { PartialConfig } from '../scripts/lib/config.js';

export default {
  name: 'large-corpus',
  data: {
    root: 'corpus',            // the corpus folder
    train: 'train',            // a sub-folder (walked recursively) or a glob such as 'train/**/*.txt'
    valid: 'valid',            // '' = hold out the last data.validFraction of the training tokens
    test: '',                  // '' with valid '' = hold out data.testFraction too
    pattern: '**/*.txt',       // inside folders, only these files
    tokenizer: 'bpe',
    bpeVocab: 8192,
  },
  model: { cell: 'lstm', embedSize: 512, hiddenSize: 512, numLayers: 2, dropout: 0.1, tieWeights: true },
  optim: { kind: 'adamw', lr: 1e-3, weightDecay: 0.01, clip: 1 },
  schedule: { kind: 'warmupCosine', warmupSteps: 1000, minLr: 1e-5 },
  // A large corpus: count in steps, not epochs; validate and checkpoint every 2,000 steps.
  train: { epochs: 1, maxSteps: 200000, batchSize: 64, bptt: 64, evalBatchSize: 16, evalEvery: 2000, checkpointEvery: 2000, keepCheckpoints: 5, logSeconds: 60 },
  sample: { prompt: '', length: 300, temperature: 0.9, topK: 40 },
} satisfies PartialConfig;
