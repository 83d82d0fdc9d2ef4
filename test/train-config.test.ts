// The training config: strict overrides, config files, shipped configs, worker resolution.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  DEFAULTS, ConfigError, closeMatches, listConfigs, loadConfigFile, mergeConfig, overridesToPartial, parseValue, resolveKey,
} from '../scripts/lib/config.js';
import { parseArgs } from '../scripts/lib/cli.js';
import { resolveWorkers } from '../scripts/lib/trainer.js';
import { ProgressBar } from '../scripts/lib/progress.js';
import { downsample, renderCurvesSvg } from '../scripts/lib/report.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-train-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const withTrain = { config: { data: { train: 'x.txt' } }, where: '' };

describe('overrides', () => {
  test('dotted and bare keys resolve to their section and parse to the default type', () => {
    const p = overridesToPartial([
      { key: 'optim.lr', value: '0.5' },
      { key: 'hiddenSize', value: '650' },
      { key: 'model.embedSize', value: '650' },
      { key: 'tieWeights', value: true },
      { key: 'data.tokenizer', value: 'word' },
      { key: 'model.dropout', value: '5e-1' },
    ]);
    expect(p).toEqual({ optim: { lr: 0.5 }, model: { hiddenSize: 650, embedSize: 650, tieWeights: true, dropout: 0.5 }, data: { tokenizer: 'word' } });
    const c = mergeConfig(withTrain, { config: p, where: '' });
    expect(c.model.hiddenSize).toBe(650);
    expect(c.model.numLayers).toBe(DEFAULTS.model.numLayers); // untouched keys keep their defaults
  });

  test('an unknown key is an error naming it and the close matches', () => {
    expect(() => resolveKey('optim.lrr')).toThrow(/unknown config key 'optim.lrr'; did you mean 'optim.lr'/);
    expect(() => resolveKey('hidenSize')).toThrow(/unknown config key 'hidenSize'; did you mean 'model.hiddenSize'/);
    expect(() => resolveKey('batch_size')).toThrow(/'train.batchSize'/);
    expect(() => resolveKey('zzzzzzzz')).toThrow(/unknown config key 'zzzzzzzz'; run with --help/);
    expect(closeMatches('epoch')).toContain('train.epochs');
    // Other frameworks' names point to ours.
    expect(() => resolveKey('lerning_rate')).toThrow(/did you mean 'optim.lr'/);
    expect(closeMatches('nhid')).toEqual(['model.hiddenSize']);
    expect(closeMatches('max_iters')).toContain('train.maxSteps');
  });

  test('a bare key in several sections is ambiguous and lists the choices', () => {
    expect(() => resolveKey('seed')).toThrow(/--seed: ambiguous config key.*--train.seed, --sample.seed/);
    expect(() => resolveKey('kind')).toThrow(/--optim.kind, --schedule.kind/);
  });

  test('a wrong type is an error naming the key, the expected type and the value', () => {
    const { field } = resolveKey('train.batchSize');
    expect(() => parseValue('train.batchSize', field, 'abc')).toThrow(ConfigError);
    expect(() => parseValue('train.batchSize', field, 'abc')).toThrow('--train.batchSize must be a positive integer, got "abc"');
    expect(() => parseValue('train.batchSize', field, '2.5')).toThrow('got 2.5');
    expect(() => parseValue('train.batchSize', field, '0')).toThrow('must be a positive integer, got 0');
    expect(() => overridesToPartial([{ key: 'model.tieWeights', value: 'yes' }])).toThrow('--model.tieWeights must be a boolean (true or false), got "yes"');
    expect(() => overridesToPartial([{ key: 'model.cell', value: 'transformer' }])).toThrow("--model.cell must be one of 'lstm', 'gru', 'rnn_tanh', 'rnn_relu', got \"transformer\"");
    expect(() => overridesToPartial([{ key: 'optim.lr', value: '0' }])).toThrow('--optim.lr must be a number > 0, got 0');
    expect(() => overridesToPartial([{ key: 'optim.lr', value: true }])).toThrow('--optim.lr needs a value');
  });

  test('rules between keys are checked on the resolved config', () => {
    expect(() => mergeConfig()).toThrow(/data.train is empty/);
    expect(() => mergeConfig(withTrain, { config: { model: { tieWeights: true, embedSize: 10, hiddenSize: 20 } }, where: '' })).toThrow(/model.tieWeights needs model.embedSize = model.hiddenSize/);
    expect(() => mergeConfig(withTrain, { config: { data: { validFraction: 0.6, testFraction: 0.4 } }, where: '' })).toThrow(/validFraction \+ data.testFraction must be below 1/);
  });
});

describe('config files', () => {
  test('a JSON file with problems lists each, naming the file and the key', async () => {
    const f = path.join(tmp, 'bad.json');
    fs.writeFileSync(f, JSON.stringify({ model: { hiddenSize: '200', layers: 2 }, optimizer: {} }));
    const err = await loadConfigFile(f).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('bad.json: 3 problems');
    expect(msg).toContain('model.hiddenSize must be a positive integer, got "200"');
    expect(msg).toContain("unknown config key 'model.layers'; did you mean 'model.numLayers'");
    expect(msg).toContain("unknown config key 'optimizer'");
  });

  test('missing files, bad JSON and unknown config names are clear errors', async () => {
    await expect(loadConfigFile(path.join(tmp, 'nope.json'))).rejects.toThrow(/nope.json does not exist/);
    fs.writeFileSync(path.join(tmp, 'broken.json'), '{ "model": ');
    await expect(loadConfigFile(path.join(tmp, 'broken.json'))).rejects.toThrow(/broken.json: not valid JSON/);
    await expect(loadConfigFile('tiny-shakespear')).rejects.toThrow(/config 'tiny-shakespear' not found.*did you mean 'tiny-shakespeare'/);
  });

  test('every shipped config loads, passes the schema and resolves', async () => {
    const names = listConfigs();
    expect(names).toEqual(expect.arrayContaining(['tiny-shakespeare', 'zaremba-small', 'zaremba-medium', 'wikitext2', 'char']));
    for (const name of names) {
      const file = await loadConfigFile(name);
      const c = mergeConfig({ config: { name, data: { train: 'x' } }, where: '' }, { config: file.config, where: file.where });
      expect(c.name.length).toBeGreaterThan(0);
    }
  });

  test("the Zaremba configs carry the paper's hyperparameters and schedules", async () => {
    const small = mergeConfig({ config: (await loadConfigFile('zaremba-small')).config, where: '' });
    expect(small.model).toMatchObject({ cell: 'lstm', numLayers: 2, hiddenSize: 200, embedSize: 200, dropout: 0 });
    expect(small.train).toMatchObject({ batchSize: 20, bptt: 20, epochs: 13 });
    expect(small.optim).toMatchObject({ kind: 'sgd', lr: 1, clip: 5 });
    expect(small.schedule).toMatchObject({ kind: 'epochDecay', constantEpochs: 4, factor: 0.5 });
    const medium = mergeConfig({ config: (await loadConfigFile('zaremba-medium')).config, where: '' });
    expect(medium.model).toMatchObject({ numLayers: 2, hiddenSize: 650, dropout: 0.5 });
    expect(medium.train).toMatchObject({ batchSize: 20, bptt: 35, epochs: 39 });
    expect(medium.schedule).toMatchObject({ kind: 'epochDecay', constantEpochs: 6 });
    expect(medium.schedule.factor).toBeCloseTo(1 / 1.2, 12);
  });
});

describe('command line', () => {
  const spec = { valued: ['resume'], flags: ['help'], overrides: true, usage: 'usage' };
  test('positional config, declared options and overrides', () => {
    const a = parseArgs(['--', 'zaremba-small', '--resume', 'runs/x', '--lr=0.5', '--tieWeights'], spec);
    expect(a.positional).toEqual(['zaremba-small']);
    expect(a.options.get('resume')).toBe('runs/x');
    expect(a.overrides).toEqual([{ key: 'lr', value: '0.5' }, { key: 'tieWeights', value: true }]);
  });
  test('scripts without overrides refuse unknown options', () => {
    expect(() => parseArgs(['--temprature=1'], { ...spec, overrides: false })).toThrow("unknown option '--temprature'");
    expect(() => parseArgs(['--resume'], spec)).toThrow('--resume needs a value');
  });
});

describe('workers', () => {
  const cfg = (batchSize: number, workers: number, evalBatchSize = 10) => mergeConfig(withTrain, { config: { train: { batchSize, workers, evalBatchSize } }, where: '' });
  test('0 means the core count, lowered to a count that divides the training and evaluation batches', () => {
    expect(resolveWorkers(cfg(32, 0), 2)).toEqual({ workers: 2, note: 'the core count' });
    expect(resolveWorkers(cfg(20, 0), 3).workers).toBe(2);
    expect(resolveWorkers(cfg(20, 0), 3).note).toContain('the largest count that divides batchSize 20 and evalBatchSize 10');
    expect(resolveWorkers(cfg(32, 0, 10), 4).workers).toBe(2);
    expect(resolveWorkers(cfg(7, 0), 4).workers).toBe(1);
  });
  test('an explicit count that does not divide a batch is an error naming the keys', () => {
    expect(() => resolveWorkers(cfg(20, 3), 8)).toThrow(/train.batchSize 20 is not divisible by train.workers 3/);
    expect(() => resolveWorkers(cfg(20, 4, 10), 8)).toThrow(/train.evalBatchSize 10 is not divisible by train.workers 4.*--train.evalBatchSize=12/);
  });
});

describe('progress', () => {
  const sink = () => {
    const chunks: string[] = [];
    return { chunks, stream: { write: (s: string) => (chunks.push(s), true) } as unknown as NodeJS.WritableStream };
  };
  const state = (step: number) => ({ step, totalSteps: 10, epoch: 1, epochs: 1, loss: Math.log(20), lr: 1e-3, tokens: step * 1000 });

  test('on a terminal: one line rewritten in place with tokens/s, loss, ppl, lr and ETA', () => {
    const { chunks, stream } = sink();
    let now = 0;
    const bar = new ProgressBar({ stream, tty: true, now: () => now });
    for (let s = 1; s <= 10; s++) {
      now = s * 1000; // 1 s per step of 1,000 tokens
      bar.update(state(s));
    }
    bar.done();
    expect(chunks.every((c) => c.startsWith('\r') || c === '\n')).toBe(true);
    const last = chunks[chunks.length - 2];
    expect(last).toContain('[####################] step 10/10 (100%) epoch 1/1 | loss 2.996 ppl 20.00 | lr 0.00100 | 1000 tok/s | ETA 0:00');
    expect(chunks.find((c) => c.includes('step 4/10'))).toContain('ETA 0:06'); // 3 s for 3 steps, 6 to go
  });

  test('not on a terminal: a plain line every logSeconds, and the last step', () => {
    const { chunks, stream } = sink();
    let now = 0;
    const bar = new ProgressBar({ stream, tty: false, logSeconds: 3, now: () => now });
    for (let s = 1; s <= 10; s++) {
      now = s * 1000;
      bar.update(state(s));
    }
    expect(chunks.map((c) => /step (\d+)\//.exec(c)![1])).toEqual(['4', '7', '10']);
    expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
  });
});

describe('report', () => {
  test('long runs are drawn from bucket means, at most 1,000 points', () => {
    const steps = Array.from({ length: 2500 }, (_, i) => ({ type: 'step' as const, step: i + 1, epoch: 1, loss: i % 2, ppl: 1, lr: 1, tokens: 0, time: 0 }));
    const d = downsample(steps);
    expect(d.length).toBeLessThanOrEqual(1000);
    expect(d[0]).toEqual([3, 1 / 3]); // steps 1-3: losses 0, 1, 0
    expect(d[d.length - 1][0]).toBe(2500);
    const svg = renderCurvesSvg([...steps, { type: 'eval', split: 'valid', step: 2500, epoch: 1, loss: 0.5, ppl: Math.exp(0.5), tokens: 0, time: 0 }], 'title');
    expect(svg).toMatch(/^<svg[\s\S]*title[\s\S]*<\/svg>$/);
  });
});
