// Zaremba, Sutskever & Vinyals (2014), the medium model: 2-layer LSTM, 650 units, dropout 0.5 on the
// non-recurrent connections, truncated BPTT over 35 steps, batch 20, SGD at lr 1, gradient norm clipped
// at 5, 39 epochs, lr divided by 1.2 every epoch after the 6th. The paper reports 82.2 validation /
// 79.7 test perplexity on PTB.
//
// Any corpus in PTB format: pnpm train zaremba-medium --data.root=path/to/ptb
// (The paper initialises every weight from U(-0.05, 0.05); here the embedding and projection use ±0.1
// and the recurrent weights PyTorch's default, as in zaremba-small.)
import type { PartialConfig } from '../scripts/lib/config.js';

export default {
  name: 'zaremba-medium',
  data: { root: 'data/ptb', train: 'ptb.train.txt', valid: 'ptb.valid.txt', test: 'ptb.test.txt', tokenizer: 'word', eos: true },
  model: { cell: 'lstm', embedSize: 650, hiddenSize: 650, numLayers: 2, dropout: 0.5, tieWeights: false },
  optim: { kind: 'sgd', lr: 1, momentum: 0, weightDecay: 0, clip: 5 },
  schedule: { kind: 'epochDecay', constantEpochs: 6, factor: 1 / 1.2 },
  train: { epochs: 39, batchSize: 20, bptt: 35, evalBatchSize: 10, logSeconds: 30 },
  sample: { prompt: '', length: 60, temperature: 1 },
} satisfies PartialConfig;
