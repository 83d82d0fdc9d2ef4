/*
 * What `pnpm train` keeps in each checkpoint besides the coordinator's training state, and how --resume,
 * `eval` and `sample` read it back. The coordinator writes it (TrainerConfig.checkpoint.extra), so a
 * checkpoint is written once, atomically, and never rewritten. Three layouts exist:
 *
 *   current   checkpoint.config is the coordinator's resolved config; extra.trainConfig is this script's,
 *             extra.tokenizer the tokenizer, extra.trainer the coordinator's state.
 *   earlier   (the script rewrote each checkpoint the coordinator wrote) checkpoint.config is the script's
 *             config, the tokenizer is in extra.run.tokenizer.
 *   first     (the single-process loop) checkpoint.config is the script's config, the tokenizer in
 *             extra.tokenizer, and there is no extra.trainer (so it cannot be resumed by the coordinator).
 *
 * A checkpoint written by @loom/coordinator for someone else has extra.trainer but neither
 * extra.trainConfig nor extra.run: it is refused, by name, rather than read as a script config.
 */
import type { Checkpoint } from '@loom/core';
import { checkpointExtra } from '@loom/coordinator';
import { ConfigError, type TrainConfig } from './config.js';
import type { TokenizerSpec } from './corpus.js';

/** What this script stores in every checkpoint (the coordinator's checkpoint.extra). */
export interface RunCheckpointExtra {
  /** The script's resolved config (the checkpoint's own `config` is the coordinator's). */
  trainConfig: TrainConfig;
  /** The tokenizer, so that a checkpoint alone can evaluate and sample. */
  tokenizer: TokenizerSpec;
}

/**
 * The script's config (unchecked: callers check it with checkPartial, naming `file`) and tokenizer (null
 * when the checkpoint has none) of a checkpoint in any of the layouts above.
 */
export function readRunCheckpoint(ckpt: Checkpoint, file: string): { config: unknown; tokenizer: TokenizerSpec | null } {
  const extra = checkpointExtra(ckpt) as Partial<RunCheckpointExtra> & { run?: { tokenizer?: TokenizerSpec } };
  if (extra.trainConfig !== undefined) return { config: extra.trainConfig, tokenizer: extra.tokenizer ?? null };
  if (extra.run === undefined && ckpt.extra?.trainer !== undefined) {
    throw new ConfigError(`checkpoint ${file} holds no pnpm train config (no extra.trainConfig): it was written by @loom/coordinator for another program, not by pnpm train`);
  }
  // The earlier layouts kept the script's config in the checkpoint's own config field.
  return { config: ckpt.config, tokenizer: extra.run?.tokenizer ?? extra.tokenizer ?? null };
}
