/*
 * The language model as the scripts use it: built from the config, evaluated on a token file (perplexity
 * with the state carried across windows, as PyTorch's word_language_model evaluates), sampled as text.
 */
import { Generator, crossEntropy, noGrad, tensor } from '@loom/core';
import { LaneBatcher, TokenBuffer, TokenFile, type Tokenizer } from '@loom/data';
import { RNNLanguageModel, sample, type LanguageModelConfig } from '@loom/models';
import { ConfigError, type TrainConfig } from './config.js';

/** The model's constructor config: the model section, the vocabulary size and the seed. */
export function modelConfig(config: TrainConfig, vocabSize: number): LanguageModelConfig {
  const m = config.model;
  return {
    vocabSize, embedSize: m.embedSize, hiddenSize: m.hiddenSize, numLayers: m.numLayers, cell: m.cell,
    dropout: m.dropout, tieWeights: m.tieWeights, seed: config.train.seed,
  };
}

export function buildModel(config: TrainConfig, vocabSize: number): RNNLanguageModel {
  return new RNNLanguageModel(modelConfig(config, vocabSize));
}

export interface EvalResult {
  /** Mean cross-entropy per token, nats. */
  loss: number;
  ppl: number;
  /** Tokens predicted. */
  tokens: number;
  seconds: number;
}

/**
 * Perplexity over a token file: B lanes, windows of T, the state carried from window to window, every
 * target counted once. As PyTorch's `evaluate` (the loss of each window weighted by its length); the
 * trailing n mod B tokens are dropped as in training.
 */
export function evaluate(
  model: RNNLanguageModel,
  tokens: TokenFile,
  { batchSize, bptt, maxWindows = Infinity, onWindow }: { batchSize: number; bptt: number; maxWindows?: number; onWindow?: (done: number, total: number) => void },
): EvalResult {
  const t0 = performance.now();
  const lanes = new LaneBatcher({ tokens, batchSize, bptt });
  const total = Math.min(lanes.numWindows(), maxWindows);
  const wasTraining = model.training;
  model.train(false);
  let sum = 0;
  let count = 0;
  try {
    noGrad(() => {
      let state = model.zeroState(batchSize);
      for (let i = 0; i < total; i++) {
        const w = lanes.window(i);
        const x = tensor(w.inputs, [w.T, w.B], { dtype: 'int32' }); // [T, B]
        const y = tensor(w.targets, [w.T, w.B], { dtype: 'int32' }); // [T, B]
        const { logits, state: next } = model.forward(x, state); // [T, B, V]
        const loss = crossEntropy(logits, y, { reduction: 'sum' }).item();
        sum += loss;
        count += w.T * w.B;
        state = next;
        onWindow?.(i + 1, total);
      }
    });
  } finally {
    model.train(wasTraining);
  }
  const loss = sum / count;
  return { loss, ppl: Math.exp(loss), tokens: count, seconds: (performance.now() - t0) / 1000 };
}

/** Prompt ids: the text encoded without closing its line (a word prompt gets no trailing <eos>). */
export function encodePrompt(tokenizer: Tokenizer, prompt: string): number[] {
  if (prompt === '') {
    // Start as a document starts: after a line end (<eos> for words, '\n' for characters and bytes).
    const word = tokenizer.kind === 'word' ? (tokenizer as unknown as { vocabulary: { eosId: number } }).vocabulary.eosId : -1;
    if (word >= 0) return [word];
    const nl = Array.from(tokenizer.encode('\n'));
    return nl.length > 0 ? nl : [0];
  }
  const out = new TokenBuffer(64);
  tokenizer.streamEncoder(out).write(prompt);
  const ids = Array.from(out.toArray());
  if (ids.length === 0) throw new ConfigError(`sample: the prompt ${JSON.stringify(prompt)} encodes to no tokens (only whitespace for a word tokenizer?)`);
  return ids;
}

export interface SampleTextOptions {
  prompt: string;
  length: number;
  temperature: number;
  /** 0 = all tokens. */
  topK: number;
  seed: number;
  greedy?: boolean;
}

/** Generates text: the prompt followed by `length` sampled tokens. */
export function sampleText(model: RNNLanguageModel, tokenizer: Tokenizer, o: SampleTextOptions): string {
  const prompt = encodePrompt(tokenizer, o.prompt);
  const ids = sample(model, {
    prompt, length: o.length, temperature: o.temperature, topK: o.topK === 0 ? undefined : o.topK,
    greedy: o.greedy ?? false, generator: new Generator(o.seed),
  });
  return (o.prompt === '' ? '' : o.prompt) + (o.prompt === '' ? '' : tokenizer.kind === 'word' ? ' ' : '') + tokenizer.decode(ids);
}
