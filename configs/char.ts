// A character-level LSTM for any text (Karpathy's char-rnn sizes): 2 layers of 512 units, dropout 0.2,
// windows of 128 characters, Adam with warmup and cosine decay. Tiny Shakespeare by default; for your
// own text:
//   pnpm train char --data.train=path/to/book.txt            (split 90% / 5% / 5%)
//   pnpm train char --data.train=books/ --data.pattern='**/*.txt'
// About 20 minutes per epoch of Tiny Shakespeare on 2 cores; --hiddenSize=256 is four times cheaper.
import type { PartialConfig } from '../scripts/lib/config.js';

export default {
  name: 'char',
  data: { train: 'data/tinyshakespeare/input.txt', tokenizer: 'char', validFraction: 0.05, testFraction: 0.05 },
  model: { cell: 'lstm', embedSize: 64, hiddenSize: 512, numLayers: 2, dropout: 0.2 },
  optim: { kind: 'adam', lr: 2e-3, weightDecay: 0, clip: 5 },
  schedule: { kind: 'warmupCosine', warmupSteps: 100, minLr: 1e-4 },
  train: { epochs: 10, batchSize: 64, bptt: 128, evalBatchSize: 32, evalEvery: 500, checkpointEvery: 500, logSeconds: 30 },
  sample: { prompt: '\n', length: 1000, temperature: 0.8 },
} satisfies PartialConfig;
