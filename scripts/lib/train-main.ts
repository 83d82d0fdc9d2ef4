/*
 * `pnpm train`, as a function (scripts/train.ts calls it; the tests call it in-process): config →
 * corpus → run folder → training loop → test evaluation → sample → report.
 */
import * as fs from 'node:fs';
import { loadCheckpoint, type Checkpoint } from '@loom/core';
import { parseArgs } from './cli.js';
import {
  ConfigError, checkPartial, configHelp, listConfigs, loadConfigFile, mergeConfig, overridesToPartial,
  type PartialConfig, type TrainConfig,
} from './config.js';
import { prepareCorpus, type TokenizerSpec } from './corpus.js';
import { sampleText } from './lm.js';
import { trainWithCoordinator } from './coordinator-trainer.js';
import { ProgressBar, fmtPpl, formatDuration, formatRate } from './progress.js';
import { writeReport } from './report.js';
import { readRunCheckpoint } from './run-checkpoint.js';
import { RunFolder, resolveResume } from './run-folder.js';
import { plannedSteps, resolveWorkers, type TrainOutcome, type TrainRequest } from './trainer.js';
import { LaneBatcher, TokenFile } from '@loom/data';
import { onInterrupt } from '@loom/coordinator';

export const DEFAULT_CONFIG = 'tiny-shakespeare';
const USAGE = `usage: pnpm train [CONFIG] [--key=value ...] [--resume=RUN_FOLDER_OR_CHECKPOINT] [--help]
  CONFIG: a name from configs/ (default ${DEFAULT_CONFIG}) or a .ts / .json file`;

/** Keys that may change when resuming: the length of the run, evaluation, checkpoints, output, sample. */
const RESUMABLE_SECTIONS = new Set(['train', 'sample']);
const FIXED_ON_RESUME = new Set(['train.batchSize', 'train.bptt', 'train.seed']);

async function resolveConfig(args: ReturnType<typeof parseArgs>): Promise<{ config: TrainConfig; resume: { checkpoint: Checkpoint; path: string; run: RunFolder | null } | null }> {
  const overrides = overridesToPartial(args.overrides);
  const resumeTarget = args.options.get('resume');
  if (typeof resumeTarget === 'string') {
    if (args.positional.length > 0) {
      throw new ConfigError(`--resume takes the config from the checkpoint; drop '${args.positional[0]}' (overrides of train.* and sample.* keys are allowed)`);
    }
    const { run, checkpoint: path } = resolveResume(resumeTarget);
    const checkpoint = await loadCheckpoint(path);
    const saved = checkPartial(readRunCheckpoint(checkpoint, path).config, `checkpoint ${path}: config: `);
    for (const [section, values] of Object.entries(overrides)) {
      for (const key of Object.keys(values as object)) {
        const dotted = `${section}.${key}`;
        if (!RESUMABLE_SECTIONS.has(section) || FIXED_ON_RESUME.has(dotted)) {
          throw new ConfigError(`--${dotted} cannot change when resuming (the checkpoint was trained with ${JSON.stringify((saved as Record<string, Record<string, unknown>>)[section]?.[key])}); only train.* (except batchSize, bptt, seed) and sample.* keys may`);
        }
      }
    }
    const config = mergeConfig({ config: saved, where: `checkpoint ${path}: ` }, { config: overrides, where: '' });
    return { config, resume: { checkpoint, path, run } };
  }
  if (args.positional.length > 1) throw new ConfigError(`expected at most one config, got ${args.positional.map((p) => `'${p}'`).join(', ')}\n${USAGE}`);
  const file = await loadConfigFile(args.positional[0] ?? DEFAULT_CONFIG);
  const named: PartialConfig = file.config.name === undefined ? { ...file.config, name: file.name } : file.config;
  return { config: mergeConfig({ config: named, where: file.where }, { config: overrides, where: '' }), resume: null };
}

export interface TrainIO {
  /** Lines of output (default: stdout). */
  out?: (line: string) => void;
  /** Where the progress bar or lines go (default: stdout; a bar when it is a terminal). */
  stream?: NodeJS.WritableStream;
}

/** `pnpm train` with these arguments; returns the exit code and the run folder. */
export async function train(argv: readonly string[], io: TrainIO = {}): Promise<{ code: number; run: string | null }> {
  const args = parseArgs(argv, { valued: ['resume'], flags: ['help'], overrides: true, usage: USAGE });
  if (args.options.has('help')) {
    process.stdout.write(`${USAGE}\n\nconfigs: ${listConfigs().join(', ')}\n\nkeys (defaults shown; a bare key such as --lr works when only one section has it):\n${configHelp()}\n`);
    return { code: 0, run: null };
  }
  const { config, resume } = await resolveConfig(args);
  const out = io.out ?? ((s: string) => process.stdout.write(s + '\n'));
  out(`config: ${JSON.stringify(config)}`);

  // Byte counts while preparing a large corpus: on a terminal only (they rewrite one line).
  const corpus = prepareCorpus(config.data, { log: out, onProgress: process.stderr.isTTY ? undefined : () => {} });
  const tokenizer: TokenizerSpec = corpus.spec;
  const { workers, note } = resolveWorkers(config);

  const run = resume?.run ?? RunFolder.create(config);
  if (resume) {
    if (!fs.existsSync(run.checkpoints)) fs.mkdirSync(run.checkpoints, { recursive: true });
    run.truncateMetricsForResume(resume.checkpoint.step, resume.path);
  }
  run.writeConfig(config);
  fs.writeFileSync(run.file(tokenizer.kind === 'bpe' ? 'merges.txt' : 'vocab.txt'), tokenizer.text);

  const { batchSize: B, bptt: T } = config.train;
  const trainTokens = TokenFile.open(corpus.train.path, { vocabulary: corpus.tokenizer });
  const windows = new LaneBatcher({ tokens: trainTokens, batchSize: B, bptt: T }).numWindows();
  trainTokens.close();
  const total = plannedSteps(config, windows);
  out(`run: ${run.dir}`);
  out(`workers: ${workers} (${note}); each takes ${B / workers} of the ${B} lanes, ${(B / workers) * T} of the ${B * T} tokens of a step`);
  out(`steps: ${windows} per epoch × ${config.train.epochs} epoch${config.train.epochs > 1 ? 's' : ''}${config.train.maxSteps > 0 ? `, capped at train.maxSteps = ${config.train.maxSteps}` : ''} = ${total}`);

  const progress = new ProgressBar({ logSeconds: config.train.logSeconds, stream: io.stream ?? process.stdout });
  const metrics = run.openMetrics();
  const controller = new AbortController();
  // One Ctrl-C: stop after this step with a checkpoint; a second, later one: quit (onInterrupt ignores the copy
  // of the first that pnpm relays).
  const stopOnSigint = onInterrupt(() => {
    progress.message('interrupted: stopping after this step and writing a checkpoint (Ctrl-C again to quit now)');
    controller.abort();
  });

  let lastValid: { loss: number; ppl: number; step: number } | null = null;
  let lastTokens = 0;
  const request: TrainRequest = {
    config, corpus, checkpointDir: run.checkpoints, signal: controller.signal,
    checkpointExtra: { tokenizer },
    hooks: {
      onStep(e) {
        lastTokens = e.tokens;
        metrics.write({ type: 'step', step: e.step, epoch: e.epoch, loss: e.loss, ppl: Math.exp(e.loss), lr: e.lr, tokens: e.tokens, time: e.time, ...(Number.isNaN(e.gradNorm) ? {} : { gradNorm: e.gradNorm }) });
        progress.update({ step: e.step, totalSteps: total, epoch: e.epoch, epochs: config.train.epochs, loss: e.loss, lr: e.lr, tokens: e.tokens });
      },
      onEval(e) {
        lastValid = e;
        metrics.write({ type: 'eval', split: 'valid', step: e.step, epoch: e.epoch, loss: e.loss, ppl: e.ppl, tokens: lastTokens, time: e.time });
        progress.message(`step ${e.step} epoch ${e.epoch}: valid loss ${e.loss.toFixed(4)} ppl ${fmtPpl(e.ppl)} (${e.tokens.toLocaleString('en-US')} tokens${Number.isNaN(e.seconds) ? '' : `, ${e.seconds.toFixed(1)} s`})`);
      },
      onCheckpoint(e) {
        progress.message(`checkpoint: ${e.path}`);
      },
      onInfo(line) {
        progress.message(line);
      },
    },
  };

  let outcome: TrainOutcome;
  try {
    outcome = await trainWithCoordinator({ ...request, workers, resumePath: resume?.path ?? null, windowsPerEpoch: windows });
  } finally {
    progress.done();
    stopOnSigint();
  }

  const figures: [string, string][] = [
    ['steps', `${outcome.step} (${outcome.stopped})`],
    ['epochs completed', String(outcome.epoch)],
    ['training time', `${formatDuration(outcome.seconds)} (${outcome.seconds.toFixed(1)} s)`],
    ['throughput', `${formatRate(outcome.tokens / Math.max(outcome.seconds, 1e-9))} tokens/s over ${outcome.tokens.toLocaleString('en-US')} tokens, ${outcome.workers} worker(s)`],
  ];
  let valid = lastValid as { loss: number; ppl: number; step: number } | null;
  let sample: string | null = null;
  // Evaluations after training run on the training workers (sharded as the validation during training
  // is); close() releases them whatever happens.
  const evalOptions = { batchSize: config.train.evalBatchSize, bptt: T };
  try {
    if (outcome.stopped !== 'interrupted' && valid?.step !== outcome.step && outcome.step > 0) {
      // Stopped where the coordinator did not validate (train.maxSteps off its evaluation steps): validate here.
      const r = await outcome.evaluate(corpus.valid.path, evalOptions);
      valid = { loss: r.loss, ppl: r.ppl, step: outcome.step };
      metrics.write({ type: 'eval', split: 'valid', step: outcome.step, epoch: outcome.epoch + 1, loss: r.loss, ppl: r.ppl, tokens: outcome.tokens, time: outcome.seconds });
      out(`step ${outcome.step}: valid loss ${r.loss.toFixed(4)} ppl ${fmtPpl(r.ppl)} (${r.tokens.toLocaleString('en-US')} tokens, ${r.seconds.toFixed(1)} s)`);
    }
    if (valid) figures.push(['validation', `loss ${valid.loss.toFixed(4)}, perplexity ${fmtPpl(valid.ppl)}`]);

    if (outcome.stopped !== 'interrupted') {
      if (corpus.test) {
        const r = await outcome.evaluate(corpus.test.path, evalOptions);
        metrics.write({ type: 'eval', split: 'test', step: outcome.step, epoch: outcome.epoch, loss: r.loss, ppl: r.ppl, tokens: outcome.tokens, time: outcome.seconds });
        out(`test: loss ${r.loss.toFixed(4)} ppl ${fmtPpl(r.ppl)} (${r.tokens.toLocaleString('en-US')} tokens, ${r.seconds.toFixed(1)} s)`);
        figures.push(['test', `loss ${r.loss.toFixed(4)}, perplexity ${fmtPpl(r.ppl)}`]);
      }
      if (config.sample.length > 0) {
        sample = sampleText(outcome.model, corpus.tokenizer, config.sample);
        fs.writeFileSync(run.file('sample.txt'), sample + '\n');
        out(`sample (temperature ${config.sample.temperature}${config.sample.topK > 0 ? `, top-k ${config.sample.topK}` : ''}):\n${'-'.repeat(60)}\n${sample}\n${'-'.repeat(60)}`);
      }
    }
  } finally {
    await outcome.close();
  }
  metrics.close();
  const report = writeReport(run, config, { figures, sample });
  out(`report: ${report.html} (curves: ${report.svg})`);
  if (outcome.stopped === 'interrupted') {
    out(`interrupted at step ${outcome.step}; continue with: pnpm train --resume ${run.dir}`);
    return { code: 130, run: run.dir };
  }
  out(`done: ${outcome.step} steps in ${formatDuration(outcome.seconds)}${valid ? `, valid ppl ${fmtPpl(valid.ppl)}` : ''}; run folder ${run.dir}`);
  return { code: 0, run: run.dir };
}
