import { describe, expect, test } from 'vitest';
import { tensor } from '@loom/core';
import { ConfigError, TRAINER_DEFAULTS, Trainer, resolveConfig, type TrainerConfig } from '../src/index.js';
import { detachState, plainToState, stateIsFinite, stateToPlain } from '../src/model.js';

const ids = Int32Array.from({ length: 400 }, (_, i) => i % 7);
const base: TrainerConfig = {
  model: { module: '@loom/models', export: 'RNNLanguageModel', config: { vocabSize: 7, embedSize: 4, hiddenSize: 4, numLayers: 1, cell: 'gru' } },
  data: { train: ids },
  optimizer: { kind: 'sgd', lr: 1 },
};
const bad = (over: Record<string, unknown>): TrainerConfig => ({ ...base, ...over }) as TrainerConfig;

describe('resolveConfig', () => {
  test('fills in the commented defaults', () => {
    const c = resolveConfig(base);
    expect(c).toMatchObject({ workers: 1, globalBatch: 20, bptt: 35, accumulation: 1, epochs: 1, maxSteps: null, clipNorm: 5, seed: 1234, backend: 'wasm', eval: null, checkpoint: null });
    expect(c.faults).toEqual(TRAINER_DEFAULTS.faults);
    // data.valid turns on evaluation at each epoch's end, with the training batch and bptt.
    expect(resolveConfig({ ...base, data: { train: ids, valid: ids } }).eval).toEqual({ every: 0, batch: 20, bptt: 35 });
    expect(resolveConfig({ ...base, checkpoint: { path: 'a.loom' } }).checkpoint).toEqual({ path: 'a.loom', dir: null, keep: 1, every: 0, extra: {} });
    expect(resolveConfig({ ...base, checkpoint: { dir: 'ckpts', keep: 3, extra: { ids: new Int32Array(2) } } }).checkpoint).toEqual({ path: null, dir: 'ckpts', keep: 3, every: 0, extra: { ids: new Int32Array(2) } });
  });

  test.each([
    ['globalBatch', { globalBatch: 20, workers: 3 }, 'trainer config: globalBatch (20) is not divisible by workers (3): every worker needs the same number of lanes'],
    ['globalBatch', { globalBatch: 20, workers: 2, accumulation: 3 }, 'trainer config: globalBatch (20) is not divisible by workers × accumulation (2 × 3): every micro-batch needs the same number of lanes'],
    ['workres', { workres: 2 }, "trainer config: unknown key 'workres' (known: model, data, optimizer, schedule, workers, globalBatch, bptt, accumulation, epochs, maxSteps, clipNorm, seed, backend, backendModule, recycleStorage, skipZeroGradients, eval, checkpoint, resume, faults, faultInjection)"],
    ['recycleStorage', { recycleStorage: 'yes' }, "trainer config: recycleStorage must be true or false, got 'yes'"],
    ['skipZeroGradients', { skipZeroGradients: 1 }, 'trainer config: skipZeroGradients must be true or false, got 1'],
    ['workers', { workers: 0 }, 'trainer config: workers must be an integer >= 1, got 0'],
    ['bptt', { bptt: 2.5 }, 'trainer config: bptt must be an integer >= 1, got 2.5'],
    ['clipNorm', { clipNorm: -1 }, 'trainer config: clipNorm must be a positive number, got -1'],
    ['model.module', { model: { module: './lm.js', export: 'X', config: {} } }, 'trainer config: model.module "./lm.js" is relative: give a package name, an absolute path or a file: URL (workers do not share your module\'s directory)'],
    ['model.config', { model: { module: '@loom/models', export: 'RNNLanguageModel' } }, 'trainer config: model.config is required (the plain data every worker builds the model from)'],
    ['model.seed', { model: { module: '@loom/models', export: 'X', config: {}, seed: 1 } }, "trainer config: unknown key 'model.seed' (known: module, export, config)"],
    ['data.train', { data: { train: new Int32Array(0) } }, 'trainer config: data.train must be a token file path or a non-empty Int32Array of ids, got Int32Array(0)'],
    ['optimizer.kind', { optimizer: { kind: 'rmsprop', lr: 1 } }, "trainer config: optimizer.kind must be one of 'sgd', 'adam', 'adamw', 'adagrad', got 'rmsprop'"],
    ['optimizer', { optimizer: { kind: 'sgd' } }, 'trainer config: optimizer: SGD: options.lr is required'],
    ['optimizer', { optimizer: { kind: 'adam', lr: 1, beta: 0.9 } }, "trainer config: optimizer: Adam: unknown option 'beta' (known: lr, betas, eps, weightDecay, amsgrad)"],
    ['schedule', { schedule: { kind: 'step', gamma: 0.5 } }, 'trainer config: schedule: StepLR: options.stepSize must be an integer >= 1, got undefined'],
    ['schedule.kind', { schedule: { kind: 'cosine' } }, "trainer config: schedule.kind must be one of 'step', 'exponential', 'epochDecay', 'warmupCosine', 'plateau', got 'cosine'"],
    ['eval', { eval: { every: 10 } }, 'trainer config: eval needs data.valid (the validation tokens)'],
    ['eval.batch', { data: { train: ids, valid: ids }, workers: 2, globalBatch: 4, eval: { batch: 3 } }, 'trainer config: eval.batch (3) is not divisible by workers (2): every worker evaluates the same number of lanes'],
    ['checkpoint', { checkpoint: { every: 5 } }, 'trainer config: checkpoint needs path (one file, replaced at every save) or dir (a folder of ckpt-<step>.loom files)'],
    ['checkpoint', { checkpoint: { path: 'a.loom', dir: 'ckpts' } }, 'trainer config: checkpoint: give path (one file) or dir (a file per save), not both'],
    ['checkpoint.path', { checkpoint: { path: '' } }, "trainer config: checkpoint.path must be a file path, got ''"],
    ['checkpoint.keep', { checkpoint: { path: 'a.loom', keep: 3 } }, 'trainer config: checkpoint.keep needs checkpoint.dir (checkpoint.path is one file, replaced at every save)'],
    ['checkpoint.keep', { checkpoint: { dir: 'ckpts', keep: 0 } }, 'trainer config: checkpoint.keep must be an integer >= 1, got 0'],
    ['checkpoint.extra', { checkpoint: { path: 'a.loom', extra: [1, 2] } }, 'trainer config: checkpoint.extra must be an object of your own data, got [1, 2]'],
    ['checkpoint.extra', { checkpoint: { path: 'a.loom', extra: { run: { tokenize: (s: string) => s } } } }, 'trainer config: checkpoint.extra.run.tokenize is a function; checkpoints hold plain data'],
    ['checkpoint.extra', { checkpoint: { path: 'a.loom', extra: { vocab: new Map([['a', 1]]) } } }, 'trainer config: checkpoint.extra.vocab is a Map; checkpoints hold plain data (it would come back as a plain object; use Object.fromEntries)'],
    ['checkpoint.extra', { checkpoint: { path: 'a.loom', extra: { trainer: 1 } } }, "trainer config: checkpoint.extra.trainer is reserved: the coordinator keeps its own state under the checkpoint's extra.trainer"],
    ['faults.onNonFinite', { faults: { onNonFinite: 'ignore' } }, "trainer config: faults.onNonFinite must be 'skip' or 'abort', got 'ignore'"],
    ['faults.timeout', { faults: { timeout: 5 } }, "trainer config: unknown key 'faults.timeout' (known: maxRestarts, stepTimeoutMs, startTimeoutMs, onNonFinite)"],
    ['faultInjection.rank', { workers: 2, globalBatch: 4, faultInjection: { rank: 2, step: 1, kind: 'throw' } }, 'trainer config: faultInjection.rank (2) must be below workers (2)'],
    ['faultInjection.kind', { faultInjection: { rank: 0, step: 1, kind: 'crash' } }, "trainer config: faultInjection.kind must be one of 'throw', 'exit', 'hang', 'nan', got 'crash'"],
  ] as [string, Record<string, unknown>, string][])('refuses a bad %s', (_key, over, message) => {
    expect(() => resolveConfig(bad(over))).toThrow(new ConfigError(message));
    expect(() => new Trainer(bad(over))).toThrow(ConfigError);
  });

  test('a model export that does not exist is refused before any worker starts', async () => {
    const t = new Trainer({ ...base, model: { ...base.model, export: 'RNNLanguageModle' } }, { log: false, handleSigint: false });
    await expect(t.run()).rejects.toThrow(/^trainer config: model.export 'RNNLanguageModle' is not a class or function exported by file:.*models\/src\/index\.ts \(exports: .*RNNLanguageModel/);
  });
});

describe('carried states as plain data', () => {
  test('round trip keeps values, shapes and structure; detach cuts the graph', () => {
    const h = tensor([1, 2, 3, 4, 5, 6], [1, 2, 3]).requireGrad();
    const state = { h: h.mul(2), c: tensor([0.5, -0.5], [1, 1, 2]), extra: [tensor([7], [1], { dtype: 'int32' })] };
    const detached = detachState(state);
    expect(detached.h.requiresGrad).toBe(false);
    expect(detached.h.node).toBe(null);
    const plain = stateToPlain(detached);
    const back = plainToState(plain) as typeof state;
    expect(back.h.shape).toEqual([1, 2, 3]);
    expect(Array.from(back.h.data)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(back.c.tolist()).toEqual([[[0.5, -0.5]]]);
    expect(back.extra[0].dtype).toBe('int32');
    expect(stateIsFinite(back)).toBe(true);
    expect(stateIsFinite({ h: tensor([1, NaN]) })).toBe(false);
  });
});
