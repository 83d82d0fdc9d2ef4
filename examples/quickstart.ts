// The README's example: a character LSTM learns a sentence, then writes it back.
import { Adam, clipGradNorm, tensor } from '@loom/core';
import { RNNLanguageModel, sample } from '@loom/models';

const text = 'the quick brown fox jumps over the lazy dog. ';
const vocab = [...new Set(text)].sort();
const ids = [...text.repeat(3)].map((ch) => vocab.indexOf(ch));
const T = ids.length - 1; // one lane, time-major [T, B=1]
const inputs = tensor(ids.slice(0, -1), [T, 1], { dtype: 'int32' });
const targets = tensor(ids.slice(1), [T, 1], { dtype: 'int32' });

const model = new RNNLanguageModel({ vocabSize: vocab.length, embedSize: 16, hiddenSize: 64, numLayers: 1, cell: 'lstm', seed: 1 });
const optimizer = new Adam(model, { lr: 0.005 });
for (let step = 0; step <= 100; step++) {
  const { loss } = model.loss(inputs, targets);
  optimizer.zeroGrad();
  loss.backward();
  clipGradNorm(model, 5);
  optimizer.step();
  if (step % 25 === 0) console.log(`step ${step}: loss ${loss.item().toFixed(2)}`);
}
model.eval();
const out = sample(model, { prompt: [...'the q'].map((ch) => vocab.indexOf(ch)), length: 40, greedy: true });
console.log('the q' + out.map((i) => vocab[i]).join(''));
