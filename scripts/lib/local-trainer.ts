/*
 * The single-process training loop (one worker, in the main thread): the reference the coordinator's
 * N-worker loop is held to, and the loop `train --workers=1` runs without starting threads.
 *
 * One step: window i of the epoch ([T, B] inputs and targets) → forward from the carried state → mean
 * cross-entropy → backward → clip the global norm → optimizer step → detach the state. The state starts
 * at zero each epoch (as PyTorch's word_language_model) and is carried across windows within it.
 * Epoch-unit schedules step after each epoch's validation; warmupCosine after every step.
 */
import {
  EpochDecayLR, ExponentialLR, ReduceLROnPlateau, StepLR, WarmupCosine, checkpointPath, clipGradNorm, createOptimizer,
  loadStateDict, rotateCheckpoints, saveCheckpoint, stateDict, tensor,
  type HasLr, type LRSchedule, type Optimizer, type ScheduleState,
} from '@loom/core';
import { LaneBatcher, TokenFile } from '@loom/data';
import { detachState, type RNNLanguageModel, type RecurrentState } from '@loom/models';
import type { TrainConfig } from './config.js';
import { buildModel, evaluate } from './lm.js';
import { plannedSteps, type Position, type TrainOutcome, type TrainRequest } from './trainer.js';

/** The optimizer the config names, over the model's parameters. */
export function makeOptimizer(config: TrainConfig, model: RNNLanguageModel): Optimizer {
  const o = config.optim;
  switch (o.kind) {
    case 'sgd': return createOptimizer('sgd', model, { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
    case 'adam':
    case 'adamw': return createOptimizer(o.kind, model, { lr: o.lr, betas: [o.beta1, o.beta2], weightDecay: o.weightDecay });
  }
}

/** The schedule the config names (null for a constant lr); `totalSteps` is for warmupCosine. */
export function makeSchedule(config: TrainConfig, optimizer: HasLr, totalSteps: number): LRSchedule | null {
  const s = config.schedule;
  switch (s.kind) {
    case 'constant': return null;
    case 'epochDecay': return new EpochDecayLR(optimizer, { constantEpochs: s.constantEpochs, factor: s.factor });
    case 'step': return new StepLR(optimizer, { stepSize: s.stepSize, gamma: s.gamma });
    case 'exponential': return new ExponentialLR(optimizer, { gamma: s.gamma });
    case 'warmupCosine': return new WarmupCosine(optimizer, { warmupSteps: s.warmupSteps, totalSteps: Math.max(totalSteps, s.warmupSteps + 1), minLr: s.minLr });
    case 'plateau': return new ReduceLROnPlateau(optimizer, { factor: s.factor, patience: s.patience, minLr: s.minLr });
  }
}

interface SavedHidden {
  h: { shape: number[]; data: Float32Array };
  c?: { shape: number[]; data: Float32Array };
}

function saveHidden(s: RecurrentState | null): SavedHidden | null {
  if (!s) return null;
  const one = (t: RecurrentState['h']) => ({ shape: [...t.shape], data: Float32Array.from(t.data as Float32Array) });
  return s.c ? { h: one(s.h), c: one(s.c) } : { h: one(s.h) };
}

function loadHidden(s: SavedHidden | null | undefined): RecurrentState | null {
  if (!s) return null;
  const one = (x: { shape: number[]; data: Float32Array }) => tensor(Float32Array.from(x.data), x.shape);
  return s.c ? { h: one(s.h), c: one(s.c) } : { h: one(s.h) };
}

export async function trainLocal(req: TrainRequest): Promise<TrainOutcome> {
  const { config, corpus, hooks, signal } = req;
  const { batchSize: B, bptt: T } = config.train;
  const model = buildModel(config, corpus.tokenizer.vocabSize);
  model.train(true);
  const train = TokenFile.open(corpus.train.path, { vocabulary: corpus.tokenizer });
  const valid = TokenFile.open(corpus.valid.path, { vocabulary: corpus.tokenizer });
  const lanes = new LaneBatcher({ tokens: train, batchSize: B, bptt: T });
  const windows = lanes.numWindows();
  const total = plannedSteps(config, windows);
  const optimizer = makeOptimizer(config, model);
  const schedule = makeSchedule(config, optimizer, total);

  let step = 0;
  let pos: Position = { epoch: 0, window: 0 };
  let state: RecurrentState | null = null;
  let tokens = 0;
  let priorSeconds = 0;
  if (req.resume) {
    const ck = req.resume;
    loadStateDict(model, ck.params);
    optimizer.loadStateDict(ck.optimizer as Parameters<Optimizer['loadStateDict']>[0]);
    const extra = ck.extra as { position: Position; hidden: SavedHidden | null; schedule: ScheduleState | null; tokens: number; seconds: number };
    if (schedule && extra.schedule) schedule.loadStateDict(extra.schedule);
    if (ck.generators?.model) model.generator.setState(ck.generators.model);
    step = ck.step;
    pos = extra.position;
    state = loadHidden(extra.hidden);
    tokens = extra.tokens;
    priorSeconds = extra.seconds;
    hooks.onInfo(`resuming at step ${step} (epoch ${pos.epoch + 1}, window ${pos.window} of ${windows}), lr ${optimizer.lr.toPrecision(3)}`);
  }

  const t0 = performance.now();
  const seconds = () => priorSeconds + (performance.now() - t0) / 1000;
  let lastCheckpoint: string | null = null;
  let lastCheckpointStep = -1;
  const checkpoint = async () => {
    const path = checkpointPath(req.checkpointDir, step);
    await saveCheckpoint(path, {
      step,
      config,
      params: stateDict(model),
      optimizer: optimizer.stateDict(),
      generators: { model: model.generator.getState() },
      extra: {
        position: pos, hidden: saveHidden(state), schedule: schedule?.stateDict() ?? null, tokens, seconds: seconds(),
        tokenizer: req.checkpointExtra.tokenizer, workers: 1,
      },
    });
    rotateCheckpoints(req.checkpointDir, config.train.keepCheckpoints);
    lastCheckpoint = path;
    lastCheckpointStep = step;
    hooks.onCheckpoint({ step, path });
  };
  const validate = () => {
    const r = evaluate(model, valid, { batchSize: config.train.evalBatchSize, bptt: T });
    hooks.onEval({ step, epoch: pos.epoch + 1, split: 'valid', loss: r.loss, ppl: r.ppl, tokens: r.tokens, seconds: r.seconds });
    return r;
  };

  let stopped: TrainOutcome['stopped'] = 'completed';
  try {
    outer: while (pos.epoch < config.train.epochs) {
      for (; pos.window < windows; ) {
        if (step >= total) {
          stopped = 'maxSteps';
          break outer;
        }
        if (signal.aborted) {
          stopped = 'interrupted';
          break outer;
        }
        const w = lanes.window(pos.window, pos.epoch);
        const x = tensor(w.inputs, [w.T, w.B], { dtype: 'int32' }); // [T, B]
        const y = tensor(w.targets, [w.T, w.B], { dtype: 'int32' }); // [T, B]
        const lr = optimizer.lr;
        optimizer.zeroGrad();
        const r = model.loss(x, y, state);
        const loss = r.loss.item();
        r.loss.backward();
        const gradNorm = config.optim.clip > 0 ? clipGradNorm(model, config.optim.clip) : NaN;
        optimizer.step();
        state = detachState(r.state);
        step += 1;
        pos = { epoch: pos.epoch, window: pos.window + 1 };
        tokens += w.T * w.B;
        if (schedule?.unit === 'step') schedule.step();
        hooks.onStep({ step, epoch: pos.epoch + 1, window: pos.window - 1, windows, loss, lr, tokens, gradNorm });
        if (config.train.evalEvery > 0 && step % config.train.evalEvery === 0 && pos.window < windows) validate();
        if (config.train.checkpointEvery > 0 && step % config.train.checkpointEvery === 0 && pos.window < windows) await checkpoint();
      }
      // Epoch end: validate, step an epoch schedule, start the next epoch from a zero state, checkpoint.
      const v = validate();
      if (schedule?.unit === 'epoch') schedule.step(v.loss);
      pos = { epoch: pos.epoch + 1, window: 0 };
      state = null;
      await checkpoint();
    }
    if (stopped !== 'completed' && lastCheckpointStep !== step) {
      // Stopped inside an epoch: validate where it stands and checkpoint.
      if (pos.window > 0) validate();
      await checkpoint();
    }
  } finally {
    train.close();
    valid.close();
  }
  model.train(false);
  return { model, step, epoch: pos.epoch, stopped, checkpoint: lastCheckpoint, seconds: seconds(), tokens, workers: 1 };
}
