// Zaremba, Sutskever & Vinyals (2014), "Recurrent Neural Network Regularization", the small model:
// 2-layer LSTM, 200 units, no dropout, truncated BPTT over 20 steps, batch 20, plain SGD at lr 1,
// gradient norm clipped at 5, 13 epochs, lr halved every epoch after the 4th. The paper reports
// 120.7 validation / 114.5 test perplexity on PTB.
//
// For any corpus in PTB format (one sentence per line, words separated by spaces, <unk> already in the
// text): a folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt. Point data.root at it:
//   pnpm train zaremba-small --data.root=path/to/ptb
//
// Differences from the paper: the recurrent weights start as PyTorch's default U(-1/√H, 1/√H) (the paper
// uses U(-0.1, 0.1) everywhere; the embedding and the projection do use ±0.1 here); validation and test
// run over 10 lanes (PyTorch's word_language_model) rather than the paper's single stream.
import type { PartialConfig } from '../scripts/lib/config.js';

export default {
  name: 'zaremba-small',
  data: { root: 'data/ptb', train: 'ptb.train.txt', valid: 'ptb.valid.txt', test: 'ptb.test.txt', tokenizer: 'word', eos: true },
  model: { cell: 'lstm', embedSize: 200, hiddenSize: 200, numLayers: 2, dropout: 0, tieWeights: false },
  optim: { kind: 'sgd', lr: 1, momentum: 0, weightDecay: 0, clip: 5 },
  schedule: { kind: 'epochDecay', constantEpochs: 4, factor: 0.5 },
  train: { epochs: 13, batchSize: 20, bptt: 20, evalBatchSize: 10, logSeconds: 30 },
  sample: { prompt: '', length: 60, temperature: 1 },
} satisfies PartialConfig;
