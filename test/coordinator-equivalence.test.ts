/*
 * N workers give the parameters of 1 worker on the same global batch.
 *
 * Bit for bit where the arithmetic is the same: N workers with one micro-batch each and 1 worker with N
 * micro-batches (accumulation N) add the same N gradients in the same order (the reduce-scatter adds the
 * workers in rank order, the single worker's backward adds its micro-batches in order), take the same
 * global norm (per-chunk sums added in chunk order) and make the same update.
 *
 * Within a tolerance against plain 1-worker training (one micro-batch of all B lanes): there the mean loss
 * over B lanes is one reduction instead of a mean of N means, which changes the last bits. Stated
 * tolerance: every step's loss within 1e-5 relative, every parameter within 1e-5 absolute after 24 steps
 * (two epochs, hidden state carried across windows and reset at the epoch boundary; SGD with momentum,
 * clipping active on some steps).
 */
import { describe, expect, test } from 'vitest';
import { Trainer, type TrainResult } from '@loom/coordinator';
import { RNNLanguageModel } from '@loom/models';
import { Recorder, TINY_LM, tinyConfig } from './helpers/coordinator.js';

interface Run { result: TrainResult; params: Record<string, Float32Array>; losses: number[]; norms: number[]; rec: Recorder }

async function run(workers: number, accumulation: number): Promise<Run> {
  const rec = new Recorder();
  const trainer = new Trainer(tinyConfig({ workers, accumulation, epochs: 2, clipNorm: 0.12 }), { onEvent: rec.onEvent, log: rec.log });
  const result = await trainer.run();
  return { result, params: trainer.parameters(), losses: rec.steps.map((s) => s.loss), norms: rec.steps.map((s) => s.gradNorm), rec };
}

function bitsEqual(a: Record<string, Float32Array>, b: Record<string, Float32Array>): boolean {
  return Object.keys(a).every((k) => Buffer.from(a[k].buffer, a[k].byteOffset, a[k].byteLength).equals(Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength)));
}

function maxAbsDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let m = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
  return m;
}

describe('N workers = 1 worker on the same global batch', () => {
  let one: Run;

  test('1 worker: 24 steps over two epochs, the effective batch printed', async () => {
    one = await run(1, 1);
    expect(one.result).toMatchObject({ step: 24, optimizerSteps: 24, epoch: 2, stopped: null, faults: [] });
    expect(one.losses).toHaveLength(24);
    expect(one.rec.lines).toContain('trainer: global batch 8 lanes × bptt 6 = 48 tokens per step; 1 worker × 8 lanes each');
    // Clipping is active on some steps and not on others (norms around 0.1–0.15, clipNorm 0.12).
    expect(one.norms.some((n) => n > 0.12)).toBe(true);
    expect(one.norms.some((n) => n < 0.12)).toBe(true);
    // And the model learns: the second epoch's loss is below the first's.
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(one.losses.slice(12))).toBeLessThan(mean(one.losses.slice(0, 12)));
  });

  for (const N of [2, 4]) {
    test(`${N} workers: bit for bit the parameters and losses of 1 worker accumulating ${N} micro-batches`, async () => {
      const [many, acc] = [await run(N, 1), await run(1, N)];
      expect(many.rec.lines).toContain(`trainer: global batch 8 lanes × bptt 6 = 48 tokens per step; ${N} workers × ${8 / N} lanes each`);
      expect(acc.rec.lines).toContain(`trainer: global batch 8 lanes × bptt 6 = 48 tokens per step; 1 worker × 8 lanes each (accumulation ${N}: micro-batches of ${8 / N} lanes)`);
      expect(many.losses).toEqual(acc.losses);
      expect(many.norms).toEqual(acc.norms);
      expect(bitsEqual(many.params, acc.params)).toBe(true);

      // Against plain 1-worker training, within the stated tolerance.
      expect(many.losses).toHaveLength(24);
      many.losses.forEach((l, i) => expect(Math.abs(l - one.losses[i]) / Math.abs(one.losses[i])).toBeLessThanOrEqual(1e-5));
      expect(maxAbsDiff(many.params, one.params)).toBeLessThanOrEqual(1e-5);
      // ... and the parameters did move (the comparison is not between two untrained models).
      const init = Object.fromEntries(new RNNLanguageModel(TINY_LM.config).namedParameters().map(([k, p]) => [k, p.data as Float32Array]));
      expect(maxAbsDiff(many.params, init)).toBeGreaterThan(1e-2);
    });
  }
});
