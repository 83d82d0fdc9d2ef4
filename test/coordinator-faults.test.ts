/*
 * Faults injected on purpose (config.faultInjection, a testing aid): a worker that throws, exits, hangs or
 * produces NaN. Each is named in a report; the trainer restarts the workers from the last checkpoint (or
 * from step 0 without one) and the run ends where the uninterrupted run ends (bit for bit: the replay from
 * the checkpoint is deterministic), reporting every step once; or it gives up after faults.maxRestarts
 * with the last checkpoint intact. Every test is bounded in time (vitest's timeout, plus the trainer's
 * own step and start timeouts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadCheckpointSync } from '@loom/core';
import { Trainer, WorkerFault, type TrainerConfig } from '@loom/coordinator';
import { Recorder, tinyConfig, tokens } from './helpers/coordinator.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-faults-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

function config(over: Partial<TrainerConfig>): TrainerConfig {
  return tinyConfig({ workers: 2, maxSteps: 8, checkpoint: { path: path.join(dir, `ckpt-${n++}.loom`), every: 2 }, ...over });
}

async function run(cfg: TrainerConfig): Promise<{ rec: Recorder; params: Record<string, Float32Array>; result: Awaited<ReturnType<Trainer['run']>> }> {
  const rec = new Recorder();
  const trainer = new Trainer(cfg, { onEvent: rec.onEvent, log: rec.log });
  const result = await trainer.run();
  return { rec, params: trainer.parameters(), result };
}

let reference: Awaited<ReturnType<typeof run>>;
const lossesByStep = (rec: Recorder): Map<number, number> => new Map(rec.steps.map((s) => [s.step, s.loss]));
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('worker faults', () => {
  test('the uninterrupted run (the reference)', async () => {
    reference = await run(config({}));
    expect(reference.result).toMatchObject({ step: 8, faults: [] });
  }, 60_000);

  const cases = [
    { kind: 'throw', rank: 1, step: 3, report: { kind: 'error', rank: 1, step: 3, phase: 'computing' }, message: /^worker 1 threw at step 3 \(computing\): Error: injected fault: worker 1 throws at step 3$/ },
    { kind: 'exit', rank: 0, step: 4, report: { kind: 'exit', rank: 0, step: 4, phase: 'computing' }, message: /^worker 0 exited at step 4 \(computing\): .*code: 7/ },
    { kind: 'hang', rank: 1, step: 5, report: { kind: 'timeout', rank: 1, step: 5, phase: 'computing' }, message: /^worker 1 stopped answering: step 5 not finished after 3000 ms \(worker 1 was computing\); worker 0 was at barrier 'gradients ready'; terminated$/ },
  ] as const;

  for (const c of cases) {
    test(`a worker that ${c.kind === 'hang' ? 'hangs' : c.kind + 's'} is named; the workers restart from the last checkpoint and finish like the uninterrupted run`, async () => {
      const t0 = performance.now();
      const cfg = config({
        faultInjection: { rank: c.rank, step: c.step, kind: c.kind },
        faults: { stepTimeoutMs: c.kind === 'hang' ? 3000 : 20_000, startTimeoutMs: 60_000 },
      });
      const { rec, params, result } = await run(cfg);
      const faults = rec.of('fault');
      expect(faults).toHaveLength(1);
      expect(faults[0].report).toMatchObject(c.report);
      expect(faults[0].report.message).toMatch(c.message);
      const lastCheckpoint = Math.floor((c.step - 1) / 2) * 2;
      expect(faults[0]).toMatchObject({ attempt: 0, restarting: true, resumeFrom: lastCheckpoint, checkpoint: cfg.checkpoint!.path });
      const replayed = c.step - 1 > lastCheckpoint
        ? `; step ${c.step - 1} runs again but was reported before the fault, so it is not reported again` : '';
      expect(rec.lines).toContain(`trainer: restarting the workers from step ${lastCheckpoint}, the checkpoint ${cfg.checkpoint!.path} (restart 1 of at most 2)${replayed}`);
      expect(result).toMatchObject({ step: 8, optimizerSteps: 8, stopped: null, tokens: 8 * 48 });
      expect(result.faults.map((f) => f.kind)).toEqual([c.report.kind]);
      // Steps from the checkpoint on ran twice, but each step is reported once; the replay gives the same
      // losses, and the end is the same.
      expect(rec.steps.map((s) => s.step)).toEqual(range(1, 8));
      const ref = lossesByStep(reference.rec);
      for (const s of rec.steps) expect(s.loss).toBe(ref.get(s.step));
      expect(params).toEqual(reference.params);
      expect(performance.now() - t0).toBeLessThan(60_000);
    }, 90_000);
  }

  test('without a checkpoint a restart starts over from step 0, says so, and still reports each step and evaluation once', async () => {
    const valid = tokens(8 * 20, 23, 9);
    const cfg = config({ checkpoint: null, data: { train: tokens(8 * 73), valid }, eval: { every: 2 }, faultInjection: { rank: 1, step: 6, kind: 'throw' } });
    const { rec, params, result } = await run(cfg);
    const faults = rec.of('fault');
    expect(faults).toMatchObject([{ attempt: 0, restarting: true, resumeFrom: 0, checkpoint: null }]);
    expect(rec.lines).toContain('trainer: restarting the workers from step 0: no checkpoint is configured, so training starts over (restart 1 of at most 2); steps 1–5 run again but were reported before the fault, so they are not reported again');
    expect(rec.steps.map((s) => s.step)).toEqual(range(1, 8));
    expect(rec.of('eval').map((e) => e.step)).toEqual([2, 4, 6, 8]);
    expect(rec.lines.filter((l) => l.startsWith('trainer: eval at step '))).toHaveLength(4);
    // The replay is the same arithmetic (evaluation does not touch the training state).
    const ref = lossesByStep(reference.rec);
    for (const s of rec.steps) expect(s.loss).toBe(ref.get(s.step));
    expect(params).toEqual(reference.params);
    expect(result).toMatchObject({ step: 8, optimizerSteps: 8, tokens: 8 * 48 });
  }, 90_000);

  test('a NaN loss skips the step and is reported; training goes on', async () => {
    const { rec, result } = await run(config({ faultInjection: { rank: 1, step: 3, kind: 'nan' } }));
    const skips = rec.of('skip');
    expect(skips).toHaveLength(1);
    expect(skips[0]).toMatchObject({ step: 3, reason: 'non-finite loss NaN (worker 1) at step 3' });
    expect(rec.lines).toContain('trainer: step 3 skipped: non-finite loss NaN (worker 1) at step 3; parameters and optimizer state unchanged');
    expect(result).toMatchObject({ step: 8, optimizerSteps: 7, faults: [] });
    // The steps before the NaN match the reference; every later loss is finite.
    const ref = lossesByStep(reference.rec);
    expect(rec.steps.filter((s) => s.step < 3).map((s) => s.loss)).toEqual([ref.get(1), ref.get(2)]);
    expect(rec.steps.map((s) => s.step)).toEqual([1, 2, 4, 5, 6, 7, 8]);
    expect(rec.steps.every((s) => Number.isFinite(s.loss))).toBe(true);
  }, 60_000);

  test("with onNonFinite 'abort', a NaN loss ends the run with a report and no restart", async () => {
    const cfg = config({ faultInjection: { rank: 0, step: 3, kind: 'nan' }, faults: { onNonFinite: 'abort' } });
    const rec = new Recorder();
    const err = await new Trainer(cfg, { onEvent: rec.onEvent, log: rec.log }).run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerFault);
    expect((err as WorkerFault).report).toMatchObject({ kind: 'nonfinite', rank: 0, step: 3 });
    expect((err as WorkerFault).message).toBe("non-finite loss NaN (worker 0) at step 3: aborting (faults.onNonFinite 'abort')");
    expect(rec.of('fault')).toMatchObject([{ restarting: false }]);
    // The checkpoint of step 2 is untouched.
    expect(loadCheckpointSync(cfg.checkpoint!.path!).step).toBe(2);
  }, 60_000);

  test('a fault that comes back after every restart: gives up after maxRestarts, the last checkpoint intact', async () => {
    const cfg = config({ faultInjection: { rank: 0, step: 5, kind: 'throw', attempts: [0, 1, 2, 3] }, faults: { maxRestarts: 1 } });
    const rec = new Recorder();
    const t0 = performance.now();
    const err = await new Trainer(cfg, { onEvent: rec.onEvent, log: rec.log }).run().catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(err).toBeInstanceOf(WorkerFault);
    expect((err as WorkerFault).report).toMatchObject({ kind: 'error', rank: 0, step: 5 });
    expect(rec.of('fault').map((f) => [f.attempt, f.restarting])).toEqual([[0, true], [1, false]]);
    expect(rec.lines).toContain(`trainer: giving up after 1 restart; the last checkpoint (${cfg.checkpoint!.path}) is step 4`);
    const ckpt = loadCheckpointSync(cfg.checkpoint!.path!);
    expect(ckpt.step).toBe(4);
    for (const [name, entry] of Object.entries(ckpt.params)) expect(entry.data.every(Number.isFinite), name).toBe(true);
  }, 90_000);
});
