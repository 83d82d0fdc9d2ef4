/*
 * Training through @loom/coordinator: N worker threads, each with B/N lanes, gradients averaged in shared
 * memory, the optimizer and schedule applied once per step. This file maps the script's config onto the
 * coordinator's and its events onto TrainHooks; after training, the same workers' trainer evaluates the
 * test split (TrainOutcome.evaluate) until the script closes it.
 *
 * Checkpoints: the coordinator writes checkpoints/ckpt-<step>.loom (atomically) at every
 * train.checkpointEvery steps (by default at each epoch end), at the end and on SIGINT, and keeps the
 * newest train.keepCheckpoints. Each holds the coordinator's state (so it resumes from these files) and,
 * as its checkpoint.extra, the script's resolved config and the tokenizer (run-checkpoint.ts), so a
 * checkpoint alone can sample and evaluate.
 */
import { Trainer, type ScheduleConfig as CoordinatorSchedule, type OptimizerConfig, type TrainerConfig } from '@loom/coordinator';
import type { RNNLanguageModel } from '@loom/models';
import type { TrainConfig } from './config.js';
import { modelConfig } from './lm.js';
import type { RunCheckpointExtra } from './run-checkpoint.js';
import { plannedSteps, type TrainOutcome, type TrainRequest } from './trainer.js';

export function optimizerConfig(c: TrainConfig): OptimizerConfig {
  const o = c.optim;
  switch (o.kind) {
    case 'sgd': return { kind: 'sgd', lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay };
    case 'adam':
    case 'adamw': return { kind: o.kind, lr: o.lr, betas: [o.beta1, o.beta2], weightDecay: o.weightDecay };
  }
}

export function scheduleConfig(c: TrainConfig, totalSteps: number): CoordinatorSchedule | null {
  const s = c.schedule;
  switch (s.kind) {
    case 'constant': return null;
    case 'epochDecay': return { kind: 'epochDecay', constantEpochs: s.constantEpochs, factor: s.factor };
    case 'step': return { kind: 'step', stepSize: s.stepSize, gamma: s.gamma };
    case 'exponential': return { kind: 'exponential', gamma: s.gamma };
    case 'warmupCosine': return { kind: 'warmupCosine', warmupSteps: s.warmupSteps, totalSteps: Math.max(totalSteps, s.warmupSteps + 1), minLr: s.minLr };
    case 'plateau': return { kind: 'plateau', factor: s.factor, patience: s.patience, minLr: s.minLr };
  }
}

/**
 * The coordinator validates at epoch ends and every `eval.every` steps. A run cut by train.maxSteps inside
 * an epoch also needs a validation at its last step: with evalEvery 0, every = maxSteps gives exactly that
 * (evaluated by the workers, each over its lanes, rather than in this thread).
 */
function evalEvery(c: TrainConfig, windowsPerEpoch: number): number {
  const { evalEvery: every, maxSteps } = c.train;
  if (every === 0 && maxSteps > 0 && maxSteps % windowsPerEpoch !== 0) return maxSteps;
  return every;
}

/** Log lines of the coordinator that the script says itself (config, evaluations, checkpoints). */
const SAID_BY_SCRIPT = /^trainer: (config |eval at step |evaluated |checkpoint )/;

export async function trainWithCoordinator(req: TrainRequest & { workers: number; resumePath: string | null; windowsPerEpoch: number }): Promise<TrainOutcome> {
  const { config, corpus, hooks } = req;
  const { batchSize: B, bptt: T } = config.train;
  const total = plannedSteps(config, req.windowsPerEpoch);
  // Training tokens and seconds so far: the coordinator's start event gives what a resumed checkpoint counted.
  let tokens = 0;
  let priorSeconds = 0;
  let t0 = performance.now();
  const seconds = () => priorSeconds + (performance.now() - t0) / 1000;
  const extra: RunCheckpointExtra = { trainConfig: config, tokenizer: req.checkpointExtra.tokenizer };

  const trainerConfig: TrainerConfig = {
    model: { module: '@loom/models', export: 'RNNLanguageModel', config: modelConfig(config, corpus.tokenizer.vocabSize) },
    data: { train: corpus.train.path, valid: corpus.valid.path },
    optimizer: optimizerConfig(config),
    schedule: scheduleConfig(config, total),
    workers: req.workers,
    globalBatch: B,
    bptt: T,
    epochs: config.train.epochs,
    maxSteps: config.train.maxSteps > 0 ? config.train.maxSteps : null,
    clipNorm: config.optim.clip > 0 ? config.optim.clip : null,
    seed: config.train.seed,
    eval: { every: evalEvery(config, req.windowsPerEpoch), batch: config.train.evalBatchSize, bptt: T },
    // By default once per epoch: fixed-length windows make every epoch the same number of steps.
    checkpoint: {
      dir: req.checkpointDir,
      keep: config.train.keepCheckpoints,
      every: config.train.checkpointEvery > 0 ? config.train.checkpointEvery : req.windowsPerEpoch,
      extra: { ...extra },
    },
    resume: req.resumePath,
  };

  let lastCheckpoint: string | null = null;
  let skipped = 0;
  const trainer = new Trainer(trainerConfig, {
    handleSigint: false, // the script's handler calls stop()
    log: (line) => {
      if (!SAID_BY_SCRIPT.test(line)) hooks.onInfo(line);
    },
    onEvent: async (e) => {
      switch (e.type) {
        case 'start':
          tokens = e.priorTokens;
          priorSeconds = e.priorSeconds;
          t0 = performance.now();
          break;
        case 'step':
          // Steps a fault restart replays are not emitted again, so each step is counted (and logged) once.
          tokens += e.tokens;
          hooks.onStep({ step: e.step, epoch: e.epoch + 1, window: e.window, windows: req.windowsPerEpoch, loss: e.loss, lr: e.lr, tokens, gradNorm: e.gradNorm, time: seconds() });
          break;
        case 'skip':
          skipped += 1;
          break;
        case 'eval':
          hooks.onEval({ step: e.step, epoch: e.epoch + 1, split: 'valid', loss: e.loss, ppl: e.perplexity, tokens: e.tokens, seconds: NaN, time: seconds() });
          break;
        case 'checkpoint':
          lastCheckpoint = e.path;
          hooks.onCheckpoint({ step: e.step, path: e.path });
          break;
        default:
          break;
      }
    },
  });
  const stop = () => trainer.stop();
  req.signal.addEventListener('abort', stop);
  let result;
  try {
    result = await trainer.run();
  } catch (e) {
    await trainer.close();
    throw e;
  } finally {
    req.signal.removeEventListener('abort', stop);
  }
  if (skipped > 0) hooks.onInfo(`${skipped} step(s) skipped for a non-finite loss or gradient`);
  const stopped: TrainOutcome['stopped'] = result.stopped ? 'interrupted' : result.step < config.train.epochs * req.windowsPerEpoch ? 'maxSteps' : 'completed';
  const model = trainer.trainedModel as unknown as RNNLanguageModel;
  model.train(false);
  return {
    model, step: result.step, epoch: result.epoch, stopped, checkpoint: lastCheckpoint, seconds: result.seconds, tokens: result.tokens, workers: req.workers,
    // The trained parameters on the workers (worker threads start on the first call, end with close()).
    evaluate: async (file, { batchSize, bptt }) => {
      const t = performance.now();
      const r = await trainer.evaluate(file, { batch: batchSize, bptt });
      return { loss: r.loss, ppl: r.perplexity, tokens: r.tokens, seconds: (performance.now() - t) / 1000 };
    },
    close: () => trainer.close(),
  };
}
