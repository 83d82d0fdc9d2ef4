/*
 * skipZeroGradients: the chunks of the gradient that are zero in every worker are neither reduced nor (for
 * plain SGD and Adagrad) updated, and each worker zeroes only what the last step left non-zero. The model here has an
 * embedding of 1024 rows × 64 (16 chunks) and a token stream that moves between bands of 64 ids, so each
 * step touches a few embedding chunks and not the same ones as the step before: a chunk left unzeroed, or
 * one skipped while a worker had written it, would change the numbers. With and without skipping, every
 * loss and every parameter must be the same bit for bit, through a skipped (NaN) step and a worker restart.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { Trainer, type TrainerConfig } from '@loom/coordinator';
import { Recorder, TINY_LM, tinyConfig } from './helpers/coordinator.js';

const VOCAB = 1024;
const BAND = 64; // rows per embedding chunk (CHUNK 4096 floats / 64)

/** Runs of 24 tokens inside one band of 64 ids, the band drawn from a seeded sequence. */
function bandedTokens(n: number): Int32Array {
  let s = 11;
  let band = 0;
  return Int32Array.from({ length: n }, (_, i) => {
    if (i % 24 === 0) band = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % (VOCAB / BAND);
    return band * BAND + ((i * 7) % BAND);
  });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-sparse-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function config(over: Partial<TrainerConfig>): TrainerConfig {
  return tinyConfig({
    model: { ...TINY_LM, config: { ...TINY_LM.config, vocabSize: VOCAB, embedSize: 64 } },
    data: { train: bandedTokens(4 * 61) }, // 4 lanes of 61 tokens: 10 windows of 6 per epoch
    workers: 2, globalBatch: 4, bptt: 6, epochs: 2, clipNorm: 0.05,
    ...over,
  });
}

interface Run { losses: number[]; fractions: number[]; params: Record<string, Float32Array>; rec: Recorder }
async function run(cfg: TrainerConfig): Promise<Run> {
  const rec = new Recorder();
  const trainer = new Trainer(cfg, { onEvent: rec.onEvent, log: rec.log });
  await trainer.run();
  return { losses: rec.steps.map((s) => s.loss), fractions: rec.steps.map((s) => s.reducedFraction), params: trainer.parameters(), rec };
}

describe('skipZeroGradients: bit for bit the run that reduces and updates everything', () => {
  // Adagrad skips the update too, and its workers then update state outside their own slice (their share).
  for (const optimizer of [{ kind: 'sgd', lr: 1 }, { kind: 'adam', lr: 0.01 }, { kind: 'adagrad', lr: 0.1 }] as const) {
    test(`${optimizer.kind}, 2 workers, 2 epochs, a NaN step in between`, async () => {
      const nan = { faultInjection: { rank: 1, step: 5, kind: 'nan' as const } };
      const dense = await run(config({ optimizer, skipZeroGradients: false, ...nan }));
      const sparse = await run(config({ optimizer, ...nan }));
      expect(sparse.rec.of('skip').map((s) => s.step)).toEqual([5]);
      expect(sparse.losses).toHaveLength(19);
      expect(sparse.losses).toEqual(dense.losses);
      expect(sparse.params).toEqual(dense.params); // element by element with Object.is: −0 ≠ +0
      // Skipping happened (a few of the 16 embedding chunks per step), and not without the option.
      expect(dense.fractions.every((f) => f === 1)).toBe(true);
      expect(Math.max(...sparse.fractions)).toBeLessThan(0.8);
      expect(new Set(sparse.fractions).size).toBeGreaterThan(1);
      // The model does learn (the comparison is not between two runs that stood still).
      const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(mean(sparse.losses.slice(10))).toBeLessThan(mean(sparse.losses.slice(0, 9)));
    }, 120_000);
  }

  test('a worker restart (from a checkpoint) mid-run ends where the uninterrupted dense run does', async () => {
    const optimizer = { kind: 'sgd', lr: 1 } as const;
    const dense = await run(config({ optimizer, skipZeroGradients: false }));
    const restarted = await run(config({
      optimizer,
      checkpoint: { path: path.join(dir, 'ckpt.loom'), every: 4 },
      faultInjection: { rank: 0, step: 7, kind: 'throw' },
    }));
    expect(restarted.rec.of('fault')).toHaveLength(1);
    expect(restarted.losses).toEqual(dense.losses);
    expect(restarted.params).toEqual(dense.params);
  }, 120_000);
});
