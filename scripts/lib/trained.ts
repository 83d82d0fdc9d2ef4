/*
 * A trained model loaded back from a checkpoint (or a run folder's newest checkpoint) for `eval` and
 * `sample`: the config and the tokenizer come from the checkpoint itself, so it needs nothing else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint, loadStateDict, type Checkpoint } from '@loom/core';
import type { Tokenizer } from '@loom/data';
import type { RNNLanguageModel } from '@loom/models';
import { ConfigError, checkPartial, mergeConfig, type TrainConfig } from './config.js';
import { makeTokenizer, type TokenizerSpec } from './corpus.js';
import { buildModel } from './lm.js';
import { readRunCheckpoint } from './run-checkpoint.js';
import { resolveResume } from './run-folder.js';

export interface Trained {
  model: RNNLanguageModel;
  config: TrainConfig;
  tokenizer: Tokenizer;
  spec: TokenizerSpec;
  checkpoint: Checkpoint;
  path: string;
}

export async function loadTrained(target: string, who: string): Promise<Trained> {
  if (!fs.existsSync(target)) throw new ConfigError(`${who}: ${target} does not exist: expected a run folder or a checkpoint file`);
  const { checkpoint: file, run } = resolveResume(target);
  const checkpoint = await loadCheckpoint(file);
  const stored = readRunCheckpoint(checkpoint, file);
  const config = mergeConfig({ config: checkPartial(stored.config, `checkpoint ${file}: config: `), where: `checkpoint ${file}: ` });
  let spec = stored.tokenizer ?? undefined;
  if (!spec && run) {
    // Checkpoints without the tokenizer: the run folder's vocabulary.
    const vocab = ['vocab.txt', 'merges.txt'].map((f) => run.file(f)).find((f) => fs.existsSync(f));
    if (vocab) spec = { kind: config.data.tokenizer, text: fs.readFileSync(vocab, 'utf8'), lowercase: config.data.lowercase, eos: config.data.eos };
  }
  if (!spec) throw new ConfigError(`${who}: checkpoint ${file} holds no tokenizer and no vocab.txt is beside it in ${path.dirname(path.dirname(file))}`);
  const tokenizer = makeTokenizer(spec);
  const model = buildModel(config, tokenizer.vocabSize);
  loadStateDict(model, checkpoint.params);
  model.train(false);
  return { model, config, tokenizer, spec, checkpoint, path: file };
}
