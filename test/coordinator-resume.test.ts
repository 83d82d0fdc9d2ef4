/*
 * Checkpoints and resume: a run stopped at a checkpoint and resumed from it gives the uninterrupted run's
 * losses step for step, bit for bit, and its final parameters. The checkpoint falls mid-epoch, so the
 * carried hidden states, the data position, Adam's state, a per-step lr schedule and the dropout
 * generators all have to come back. Also: the caller's checkpoint.extra in every checkpoint, read back
 * on resume; checkpoints from before it (and before the token and time counts) still resume; evaluation
 * sharded over workers gives the 1-worker perplexity.
 */
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { listCheckpoints, loadCheckpoint, loadCheckpointSync, saveCheckpoint } from '@loom/core';
import { Trainer, checkpointExtra, type TrainResult, type TrainerConfig } from '@loom/coordinator';
import { Recorder, TINY_LM, tinyConfig, tokens } from './helpers/coordinator.js';
import { scratchDir } from './helpers/scratch.js';

const { dir, tokenFile } = scratchDir('loom-resume-');
const train = tokenFile('train.tok', tokens(8 * 61, 23, 7));
const valid = tokenFile('valid.tok', tokens(8 * 25, 23, 8));

function config(over: Partial<TrainerConfig>): TrainerConfig {
  return tinyConfig({
    model: { ...TINY_LM, config: { ...TINY_LM.config, dropout: 0.2 } },
    data: { train, valid, variableLength: { seed: 3, std: 2, minLength: 3 } },
    optimizer: { kind: 'adam', lr: 0.01 },
    schedule: { kind: 'warmupCosine', warmupSteps: 3, totalSteps: 30 },
    workers: 2,
    epochs: 2,
    ...over,
  });
}

async function run(cfg: TrainerConfig): Promise<{ rec: Recorder; params: Record<string, Float32Array>; result: TrainResult }> {
  const rec = new Recorder();
  const trainer = new Trainer(cfg, { onEvent: rec.onEvent, log: rec.log });
  const result = await trainer.run();
  return { rec, params: trainer.parameters(), result };
}

describe('checkpoint and resume', () => {
  test('resuming from a mid-epoch checkpoint reproduces the uninterrupted run step for step', async () => {
    const whole = await run(config({}));
    const total = whole.rec.steps.length;
    expect(total).toBeGreaterThan(12);
    const windows = whole.rec.of('epoch')[0].step;
    const cut = Math.floor(windows / 2); // mid-epoch: hidden states are being carried

    const ckpt = path.join(dir, 'cut.loom');
    const first = await run(config({ maxSteps: cut, checkpoint: { path: ckpt } }));
    expect(first.rec.of('checkpoint')).toMatchObject([{ step: cut, path: ckpt }]);
    const saved = loadCheckpointSync(ckpt);
    expect(saved.step).toBe(cut);
    expect(Object.keys(saved.generators!)).toEqual(['worker0.default', 'worker0.model.generator', 'worker1.default', 'worker1.model.generator']);
    expect((saved.config as { workers: number }).workers).toBe(2);

    const second = await run(config({ resume: ckpt }));
    expect(second.rec.lines.some((l) => l.startsWith(`trainer: resumed from ${ckpt} at step ${cut} (epoch 0, window ${cut})`))).toBe(true);
    expect(second.rec.of('start')[0].fromStep).toBe(cut + 1);
    const after = second.rec.steps;
    expect(after.map((s) => s.step)).toEqual(whole.rec.steps.slice(cut).map((s) => s.step));
    expect(after.map((s) => s.loss)).toEqual(whole.rec.steps.slice(cut).map((s) => s.loss));
    expect(after.map((s) => s.lr)).toEqual(whole.rec.steps.slice(cut).map((s) => s.lr));
    expect(second.rec.of('eval')).toEqual(whole.rec.of('eval'));
    expect(second.params).toEqual(whole.params);
  }, 90_000);

  test('a checkpoint from 2 workers resumes on 1 worker with 2 micro-batches (no dropout: the same arithmetic)', async () => {
    const plain = (over: Partial<TrainerConfig>): TrainerConfig => config({ model: { ...TINY_LM }, ...over });
    const whole = await run(plain({ epochs: 1 }));
    const ckpt = path.join(dir, 'regroup.loom');
    await run(plain({ epochs: 1, maxSteps: 5, checkpoint: { path: ckpt } }));
    const resumed = await run(plain({ epochs: 1, resume: ckpt, workers: 1, accumulation: 2 }));
    expect(resumed.rec.steps.map((s) => s.loss)).toEqual(whole.rec.steps.slice(5).map((s) => s.loss));
    expect(resumed.params).toEqual(whole.params);
  }, 90_000);

  test('a checkpoint cannot resume on a different number of micro-batches in all', async () => {
    const ckpt = path.join(dir, 'regroup.loom');
    const err = await new Trainer(config({ model: { ...TINY_LM }, resume: ckpt, workers: 4 }), { log: false }).run().catch((e: Error) => e);
    expect((err as Error).message).toBe(`trainer config: resume: ${ckpt} was written with workers × accumulation = 2 × 1; this run has 4 × 1 (hidden states are kept per micro-batch, so the product must match)`);
  }, 30_000);

  test("checkpoint.extra is in every checkpoint of a folder, comes back with checkpointExtra(), and goes on after a resume", async () => {
    const plain = (over: Partial<TrainerConfig>): TrainerConfig => config({ model: { ...TINY_LM }, epochs: 1, ...over });
    const folder = path.join(dir, 'extra');
    const extra = { script: { name: 'tiny', lr: 0.01, tags: ['a', 'b'], note: null }, vocabulary: 'a\nb\nc\n', counts: new Int32Array([3, 1, 4]) };
    const first = await run(plain({ maxSteps: 7, checkpoint: { dir: folder, every: 2, keep: 2, extra } }));
    // Saved at 2, 4, 6 and at the end (7); the newest two kept.
    expect(first.rec.of('checkpoint').map((c) => path.basename(c.path))).toEqual(['ckpt-00000002.loom', 'ckpt-00000004.loom', 'ckpt-00000006.loom', 'ckpt-00000007.loom']);
    const kept = listCheckpoints(folder);
    expect(kept.map((c) => c.step)).toEqual([6, 7]);
    const saved = await loadCheckpoint(kept[1].path);
    expect(checkpointExtra(saved)).toEqual(extra);
    expect((saved.config as { checkpoint: { extra: unknown } }).checkpoint.extra).toBe('<keys: script, vocabulary, counts>'); // described, not copied
    const sum = (r: { rec: Recorder }): number => r.rec.steps.reduce((n, e) => n + e.tokens, 0);
    expect(first.result.tokens).toBe(sum(first)); // variable-length windows: counted step by step
    expect(first.rec.lines.some((l) => l.includes('a\nb'))).toBe(false); // the printed config does not carry it

    // The resuming side reads it back, and passes it on to the checkpoints it writes.
    const back = checkpointExtra(await loadCheckpoint(kept[1].path));
    const second = await run(plain({ resume: kept[1].path, checkpoint: { dir: folder, every: 2, keep: 2, extra: back } }));
    expect(second.rec.of('start')[0]).toMatchObject({ fromStep: 8, priorTokens: first.result.tokens });
    expect(second.rec.of('start')[0].priorSeconds).toBeGreaterThan(0);
    const last = await loadCheckpoint(listCheckpoints(folder).at(-1)!.path);
    expect(last.step).toBe(second.result.step);
    expect(checkpointExtra(last)).toEqual(extra);
    expect(second.result.tokens).toBe(first.result.tokens + sum(second));
    expect(second.result.seconds).toBeGreaterThan(second.rec.of('start')[0].priorSeconds);
  }, 90_000);

  test('a checkpoint written before checkpoint.extra and the token and time counts still resumes', async () => {
    const plain = (over: Partial<TrainerConfig>): TrainerConfig => config({ model: { ...TINY_LM }, epochs: 1, ...over });
    const whole = await run(plain({}));
    const ckpt = path.join(dir, 'old.loom');
    await run(plain({ maxSteps: 5, checkpoint: { path: ckpt } }));
    // What the coordinator wrote before: extra holds only 'trainer', without seconds or progress.tokens.
    const c = await loadCheckpoint(ckpt);
    const { seconds: _s, ...trainer } = c.extra!.trainer as Record<string, unknown>;
    const { tokens: _t, ...progress } = trainer.progress as Record<string, unknown>;
    await saveCheckpoint(ckpt, { ...c, extra: { trainer: { ...trainer, progress } } });
    expect(checkpointExtra(await loadCheckpoint(ckpt))).toEqual({});

    const resumed = await run(plain({ resume: ckpt }));
    expect(resumed.rec.lines).toContain(`trainer: ${ckpt} was written before checkpoints kept the training tokens and seconds: both count from 0 here`);
    expect(resumed.rec.steps.map((s) => s.loss)).toEqual(whole.rec.steps.slice(5).map((s) => s.loss));
    expect(resumed.params).toEqual(whole.params);
    expect(resumed.result.tokens).toBe(resumed.rec.steps.reduce((n, e) => n + e.tokens, 0));
  }, 90_000);

  test('evaluation sharded over 2 workers gives the perplexity of 1 worker', async () => {
    const cfg = (workers: number): TrainerConfig => config({ model: { ...TINY_LM }, data: { train, valid }, workers, epochs: 1 });
    const [one, two] = [await run(cfg(1)), await run(cfg(2))];
    const [e1, e2] = [one.rec.of('eval'), two.rec.of('eval')];
    expect(e1).toHaveLength(1);
    expect(e2[0].tokens).toBe(e1[0].tokens);
    expect(e1[0].tokens).toBe(8 * 24);
    expect(Math.abs(e2[0].perplexity - e1[0].perplexity) / e1[0].perplexity).toBeLessThan(1e-5);
    expect(e1[0].perplexity).toBeCloseTo(Math.exp(e1[0].loss), 10);
    expect(e1[0].perplexity).toBeLessThan(23); // better than uniform over the vocabulary after one epoch
  }, 60_000);
});
