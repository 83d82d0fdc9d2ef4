// `pnpm train`, `eval` and `sample` end to end on a small generated corpus in a temp folder: every artefact of
// a run, resuming from a checkpoint (also one in an older layout), a worker fault in the middle of a run, the
// corpus cache, and clear errors for bad configs and missing files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { Generator, loadCheckpoint, saveCheckpoint } from '@loom/core';
import { checkpointExtra, type FaultInjection, type TrainerConfig, type TrainerOptions } from '@loom/coordinator';
import { train } from '../scripts/lib/train-main.js';
import { evalMain } from '../scripts/lib/eval-main.js';
import { sampleMain } from '../scripts/lib/sample-main.js';
import type { Metric } from '../scripts/lib/run-folder.js';

// The script has no key for the coordinator's fault injection (a testing aid), so one test sets it on the
// Trainer the script builds, through this wrapper; every other test runs the Trainer unchanged.
const injected = vi.hoisted(() => ({ fault: null as FaultInjection | null }));
vi.mock('@loom/coordinator', async (importOriginal) => {
  const real = await importOriginal<typeof import('@loom/coordinator')>();
  class Trainer extends real.Trainer {
    constructor(config: TrainerConfig, options?: TrainerOptions) {
      super(injected.fault ? { ...config, faultInjection: injected.fault } : config, options);
    }
  }
  return { ...real, Trainer };
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-train-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A seeded text of short sentences over a 12-word vocabulary (about 5,000 characters). */
function makeCorpus(file: string): void {
  const g = new Generator(7);
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'to', 'its', 'bed'];
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) {
    const n = 3 + g.int(5);
    lines.push(Array.from({ length: n }, () => words[g.int(words.length)]).join(' '));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

const corpus = path.join(tmp, 'corpus.txt');
const configFile = path.join(tmp, 'tiny.json');
let fullRunDir = '';

beforeAll(() => {
  makeCorpus(corpus);
  fs.writeFileSync(configFile, JSON.stringify({
    name: 'tiny',
    out: path.join(tmp, 'runs'),
    data: { train: corpus, tokenizer: 'char', validFraction: 0.1, testFraction: 0.1, cache: path.join(tmp, 'cache') },
    model: { cell: 'lstm', embedSize: 8, hiddenSize: 16, numLayers: 1 },
    optim: { kind: 'adam', lr: 0.01, clip: 5 },
    train: { epochs: 1, maxSteps: 6, batchSize: 4, bptt: 8, workers: 1, evalBatchSize: 4, logSeconds: 0 },
    sample: { prompt: 'the', length: 20, temperature: 1, seed: 3 },
  }));
});

/** Runs `train` in-process, capturing what it prints. */
async function run(args: string[]): Promise<{ code: number; runDir: string; out: string }> {
  let out = '';
  const stream = new Writable({ write(chunk, _enc, cb) { out += String(chunk); cb(); } });
  const r = await train(args, { out: (s) => (out += s + '\n'), stream });
  return { code: r.code, runDir: r.run ?? '', out };
}

function metrics(runDir: string): Metric[] {
  return fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Metric);
}

function stepLosses(ms: Metric[]): Map<number, number> {
  return new Map(ms.filter((m) => m.type === 'step').map((m) => [m.step, (m as { loss: number }).loss]));
}

describe('train', () => {
  let full: { code: number; runDir: string; out: string };

  test('a few steps from a config write every artefact of the run folder', async () => {
    full = await run([configFile]);
    fullRunDir = full.runDir;
    expect(full.code).toBe(0);
    const dir = full.runDir;
    expect(path.basename(dir)).toMatch(/^tiny-\d{8}-\d{6}/);
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual(['checkpoints', 'config.json', 'metrics.jsonl', 'report.html', 'report.svg', 'sample.txt', 'vocab.txt']);

    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config.train).toMatchObject({ maxSteps: 6, batchSize: 4, bptt: 8 });
    expect(config.optim.beta2).toBe(0.999); // defaults filled in: the resolved config

    const ms = metrics(dir);
    const steps = ms.filter((m) => m.type === 'step');
    expect(steps.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const s of steps) expect(Number.isFinite((s as { loss: number }).loss)).toBe(true);
    // 13 characters + <unk>: the first loss is near ln(14); training lowers it.
    const first = (steps[0] as { loss: number }).loss;
    expect(Math.abs(first - Math.log(14))).toBeLessThan(0.3);
    expect((steps[5] as { loss: number }).loss).toBeLessThan(first);
    const evals = ms.filter((m) => m.type === 'eval');
    expect(evals.map((m) => (m as { split: string }).split)).toEqual(['valid', 'test']);
    for (const e of evals as { loss: number; ppl: number }[]) expect(e.ppl).toBeCloseTo(Math.exp(e.loss), 6);

    const ckpts = fs.readdirSync(path.join(dir, 'checkpoints'));
    expect(ckpts).toEqual(['ckpt-00000006.loom']);
    const ck = await loadCheckpoint(path.join(dir, 'checkpoints', ckpts[0]));
    expect(ck.step).toBe(6);
    // The resolved config and the tokenizer, in every checkpoint (written there by the coordinator); the
    // checkpoint's own config is the coordinator's.
    const stored = checkpointExtra(ck);
    expect(Object.keys(stored)).toEqual(['trainConfig', 'tokenizer']);
    expect(stored.trainConfig).toEqual(config);
    expect(stored.tokenizer).toMatchObject({ kind: 'char', text: fs.readFileSync(path.join(dir, 'vocab.txt'), 'utf8') });
    expect(ck.config).toMatchObject({ globalBatch: 4, bptt: 8, workers: 1 });
    expect(Object.keys(ck.params)).toContain('embedding.weight');

    expect(fs.readFileSync(path.join(dir, 'report.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('validation');
    const sample = fs.readFileSync(path.join(dir, 'sample.txt'), 'utf8');
    expect(sample.startsWith('the')).toBe(true);
    expect([...sample.trimEnd()].length).toBe(3 + 20);
    expect(full.out).toContain('global batch 4 lanes × bptt 8 = 32 tokens per step; 1 worker × 4 lanes each');
    expect(full.out).toMatch(/test: loss \d/);
  });

  test('the prepared corpus is cached and reused', async () => {
    const again = await run([configFile, '--train.maxSteps=1', '--sample.length=0']);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/corpus: reusing /);
    expect(fs.existsSync(path.join(again.runDir, 'sample.txt'))).toBe(false);
  });

  test('--resume continues where the run stopped: the same steps, the same losses', async () => {
    const half = await run([configFile, '--train.maxSteps=3']);
    expect(half.code).toBe(0);
    expect(fs.readdirSync(path.join(half.runDir, 'checkpoints'))).toEqual(['ckpt-00000003.loom']);
    const resumed = await run(['--resume', half.runDir, '--train.maxSteps=6']);
    expect(resumed.code).toBe(0);
    expect(resumed.runDir).toBe(half.runDir);
    expect(resumed.out).toMatch(/resumed from .*ckpt-00000003.loom at step 3/);
    const ms = metrics(half.runDir);
    expect(ms.filter((m) => m.type === 'step').map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ms.filter((m) => m.type === 'resume')).toHaveLength(1);
    expect(ms.filter((m) => m.type === 'eval' && m.split === 'test')).toHaveLength(1); // the stopped run's test eval is dropped
    // The resumed steps 4-6 are the uninterrupted run's steps 4-6: parameters, optimizer state, data
    // position, hidden state and dropout generator all came back.
    const a = stepLosses(metrics(full.runDir));
    const b = stepLosses(ms);
    for (let s = 1; s <= 6; s++) expect(b.get(s)).toBe(a.get(s));
    const ck = await loadCheckpoint(path.join(half.runDir, 'checkpoints', 'ckpt-00000006.loom'));
    expect(ck.step).toBe(6);
  });

  test('a worker fault mid-run: the workers restart from the last checkpoint and metrics.jsonl has every step once', async () => {
    injected.fault = { rank: 0, step: 4, kind: 'throw' };
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run([configFile, '--train.checkpointEvery=2', '--sample.length=0']);
    } finally {
      injected.fault = null;
    }
    expect(r.code).toBe(0);
    expect(r.out).toContain('trainer: FAULT: worker 0 threw at step 4 (computing): Error: injected fault: worker 0 throws at step 4');
    const ckpt2 = path.join(r.runDir, 'checkpoints', 'ckpt-00000002.loom');
    expect(r.out).toContain(`trainer: restarting the workers from step 2, the checkpoint ${ckpt2} (restart 1 of at most 2); step 3 runs again but was reported before the fault, so it is not reported again`);
    const ms = metrics(r.runDir);
    expect(ms.filter((m) => m.type === 'step').map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ms.filter((m) => m.type === 'eval').map((m) => `${(m as { split: string }).split} ${m.step}`)).toEqual(['valid 6', 'test 6']);
    // The replay is the uninterrupted run's arithmetic.
    const a = stepLosses(metrics(full.runDir));
    const b = stepLosses(ms);
    for (let s = 1; s <= 6; s++) expect(b.get(s)).toBe(a.get(s));
  });

  test('a checkpoint of the earlier layout (the script rewrote it) still evaluates and resumes; a bare coordinator checkpoint is refused by name', async () => {
    const half = await run([configFile, '--train.maxSteps=3', '--sample.length=0']);
    const file = path.join(half.runDir, 'checkpoints', 'ckpt-00000003.loom');
    const ck = await loadCheckpoint(file);
    const { trainConfig, tokenizer } = checkpointExtra(ck);
    // Earlier: the script's config as the checkpoint's config, the tokenizer in extra.run, and no token or
    // time counts in the coordinator's part.
    const { seconds: _seconds, ...trainer } = ck.extra!.trainer as Record<string, unknown>;
    const { tokens: _tokens, ...progress } = trainer.progress as Record<string, unknown>;
    const old = { ...ck, config: trainConfig, extra: { trainer: { ...trainer, progress }, run: { tokenizer, tokens: 96, seconds: 1.5, trainerConfig: ck.config } } };
    await saveCheckpoint(file, old);
    fs.rmSync(path.join(half.runDir, 'vocab.txt')); // the tokenizer has to come from the checkpoint
    const logged = metrics(half.runDir).find((m) => m.type === 'eval' && m.split === 'test') as { loss: number };
    expect((await evalMain([file], { out: () => {} })).loss).toBeCloseTo(logged.loss, 6);

    const resumed = await run(['--resume', half.runDir, '--train.maxSteps=6']);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toContain(`trainer: ${file} was written before checkpoints kept the training tokens and seconds: both count from 0 here`);
    const ms = metrics(half.runDir);
    expect(ms.filter((m) => m.type === 'step').map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const a = stepLosses(metrics(full.runDir));
    const b = stepLosses(ms);
    for (let s = 1; s <= 6; s++) expect(b.get(s)).toBe(a.get(s));
    // What the resumed run wrote is in the current layout.
    const now = await loadCheckpoint(path.join(half.runDir, 'checkpoints', 'ckpt-00000006.loom'));
    expect(checkpointExtra(now)).toMatchObject({ trainConfig: { name: 'tiny' }, tokenizer: { kind: 'char' } });

    const bare = path.join(tmp, 'bare.loom');
    await saveCheckpoint(bare, { ...ck, extra: { trainer: ck.extra!.trainer } }); // its config is the coordinator's
    const refused = `checkpoint ${bare} holds no pnpm train config (no extra.trainConfig): it was written by @loom/coordinator for another program, not by pnpm train`;
    await expect(evalMain([bare], { out: () => {} })).rejects.toThrow(refused);
    await expect(run(['--resume', bare])).rejects.toThrow(refused);
  });

  test('Ctrl-C stops after the step in flight with a checkpoint and a report; --resume finishes the run', async () => {
    let out = '';
    let interrupted = false;
    const stream = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        if (!interrupted && /step 2\//.test(out)) {
          interrupted = true;
          process.emit('SIGINT'); // what Ctrl-C delivers
        }
        cb();
      },
    });
    const r = await train([configFile, '--train.maxSteps=40'], { out: (s) => (out += s + '\n'), stream });
    expect(r.code).toBe(130);
    expect(out).toContain(`continue with: pnpm train --resume ${r.run}`);
    const dir = r.run!;
    const steps = metrics(dir).filter((m) => m.type === 'step').map((m) => m.step);
    const last = steps[steps.length - 1];
    expect(last).toBeGreaterThanOrEqual(2);
    expect(last).toBeLessThan(40);
    expect(fs.readdirSync(path.join(dir, 'checkpoints'))).toEqual([`ckpt-${String(last).padStart(8, '0')}.loom`]);
    expect(fs.existsSync(path.join(dir, 'report.html'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'sample.txt'))).toBe(false); // no test evaluation or sample after an interruption
    expect(process.listenerCount('SIGINT')).toBe(0); // handlers removed

    const resumed = await run(['--resume', dir]);
    expect(resumed.code).toBe(0);
    const all = metrics(dir).filter((m) => m.type === 'step').map((m) => m.step);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  test('a folder of files and a glob as the corpus, word tokens', async () => {
    const dir = path.join(tmp, 'books');
    fs.mkdirSync(path.join(dir, 'part2'), { recursive: true });
    makeCorpus(path.join(dir, 'a.txt'));
    makeCorpus(path.join(dir, 'part2', 'b.txt'));
    fs.writeFileSync(path.join(dir, 'part2', 'notes.md'), 'not part of the corpus\n');
    fs.writeFileSync(path.join(tmp, 'held-out.txt'), 'the cat sat on the mat\nthe dog ran to a zebra\n');
    const r = await run([configFile, `--data.train=${dir}`, '--data.pattern=**/*.txt', `--data.valid=${tmp}/held-*.txt`, '--data.tokenizer=word', '--train.maxSteps=2', '--sample.length=5']);
    expect(r.code).toBe(0);
    // 12 words + <unk> + <eos>; 'zebra' in the held-out text is <unk>; no test split when valid is given.
    expect(fs.readFileSync(path.join(r.runDir, 'vocab.txt'), 'utf8').trim().split('\n')).toHaveLength(14);
    expect(r.out).toMatch(/corpus: vocabulary 14; train \d[\d,]* tokens, valid 14\n/);
    expect(metrics(r.runDir).filter((m) => m.type === 'eval').map((m) => (m as { split: string }).split)).toEqual(['valid']);
  });

  test('resuming may lengthen the run but not change the model', async () => {
    await expect(run(['--resume', full.runDir, '--model.hiddenSize=32'])).rejects.toThrow(/--model.hiddenSize cannot change when resuming/);
    await expect(run(['--resume', path.join(tmp, 'no-such-run')])).rejects.toThrow(/--resume: .*no-such-run does not exist/);
  });

  test('bad configs and missing files are clear errors', async () => {
    await expect(run([configFile, '--hidenSize=3'])).rejects.toThrow(/unknown config key 'hidenSize'; did you mean 'model.hiddenSize'/);
    await expect(run([configFile, '--batchSize=four'])).rejects.toThrow('--train.batchSize must be a positive integer, got "four"');
    await expect(run([configFile, `--data.train=${path.join(tmp, 'missing.txt')}`])).rejects.toThrow(/data.train: .*missing.txt does not exist/);
    await expect(run([configFile, '--data.valid=nope/*.txt'])).rejects.toThrow(/data.valid: the folder nope of the glob/);
    await expect(run([configFile, '--train.workers=3'])).rejects.toThrow(/batchSize 4 is not divisible by train.workers 3/);
  });
});

describe('eval and sample', () => {
  test('eval reports the perplexity of a checkpoint on a corpus; sample generates from it', async () => {
    const runDir = fullRunDir;
    // On the run's own test split, with the run's lanes: exactly the test figure the run logged, so the
    // checkpoint brought the trained model back.
    const own = await evalMain([runDir], { out: () => {} });
    const logged = metrics(runDir).find((m) => m.type === 'eval' && m.split === 'test') as { loss: number };
    expect(own.loss).toBeCloseTo(logged.loss, 6);
    let out = '';
    const r = await evalMain([runDir, `--data=${corpus}`, '--batchSize=2'], { out: (s) => (out += s + '\n') });
    const n = fs.readFileSync(corpus, 'utf8').length; // ASCII: one token per character
    expect(r.tokens).toBe(2 * (Math.floor(n / 2) - 1)); // 2 lanes of ⌊n/2⌋, every token but each lane's first predicted
    expect(r.ppl).toBeCloseTo(Math.exp(r.loss), 9);
    expect(out).toMatch(/perplexity \d/);

    let text = '';
    await sampleMain([runDir, '--prompt=the cat', '--length=30', '--temperature=0.5', '--topK=3', '--seed=1'], { out: (s) => (text += s) });
    expect(text.startsWith('the cat')).toBe(true);
    expect([...text].length).toBe(7 + 30);
    let again = '';
    await sampleMain([runDir, '--prompt=the cat', '--length=30', '--temperature=0.5', '--topK=3', '--seed=1'], { out: (s) => (again += s) });
    expect(again).toBe(text); // seeded
    await expect(sampleMain([runDir, '--temperature=0'], { out: () => {} })).rejects.toThrow(/--temperature must be a number > 0/);
    await expect(evalMain([path.join(tmp, 'nothing.loom')], { out: () => {} })).rejects.toThrow(/nothing.loom does not exist/);
  });
});
