// The default config (`pnpm train` with no arguments): a small character-level LSTM on Tiny Shakespeare
// (public domain, shipped in data/tinyshakespeare). Sized to finish in under 3 minutes on 2 cores,
// corpus preparation included, and print a sample. Split: first 90% of the characters to train, the
// next 5% to validate, the last 5% to test.
import type { PartialConfig } from '../scripts/lib/config.js';

export default {
  name: 'tiny-shakespeare',
  data: { train: 'data/tinyshakespeare/input.txt', tokenizer: 'char', validFraction: 0.05, testFraction: 0.05 },
  model: { cell: 'lstm', embedSize: 64, hiddenSize: 128, numLayers: 2, dropout: 0 },
  optim: { kind: 'adam', lr: 1e-2, clip: 5 },
  schedule: { kind: 'warmupCosine', warmupSteps: 20, minLr: 1e-3 },
  train: { epochs: 1, batchSize: 32, bptt: 64, evalBatchSize: 32, logSeconds: 10 },
  // A prompt of a few lines: trained on windows that mostly start from a carried state, the model needs
  // some characters to warm its state up before its guesses are any good.
  sample: { prompt: 'ROMEO:\nIs the day so young?\n\nJULIET:\n', length: 300, temperature: 0.8 },
} satisfies PartialConfig;
