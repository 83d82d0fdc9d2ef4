/*
 * Trainer.evaluate(): any token stream, evaluated by the workers as data.valid is during training. After
 * run() its perplexity equals a single-process evaluation of the same final parameters (scripts/lib/lm.ts:
 * another code path, forward and summed cross-entropy in this thread), for 1 and 2 workers; the workers it
 * starts stay for the next call and are released by close().
 */
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadStateDict, stateDict } from '@loom/core';
import { TokenFile } from '@loom/data';
import { RNNLanguageModel } from '@loom/models';
import { Trainer, type TrainerConfig } from '@loom/coordinator';
import { evaluate as evaluateHere } from '../scripts/lib/lm.js';
import { Recorder, TINY_LM, tinyConfig, tokens } from './helpers/coordinator.js';
import { scratchDir } from './helpers/scratch.js';

const { dir, tokenFile } = scratchDir('loom-evaluate-');
// 4 lanes of 51 tokens and 3 left over (dropped, as in training): windows of 5, the last one shorter.
const testIds = tokens(4 * 51 + 3, 23, 11);
const testFile = tokenFile('test.tok', testIds);

/** The single-process perplexity of the trainer's current parameters on testFile. */
function perplexityHere(trainer: Trainer, batchSize: number, bptt: number): { ppl: number; tokens: number } {
  const model = new RNNLanguageModel(TINY_LM.config);
  loadStateDict(model, stateDict(trainer.trainedModel));
  const file = TokenFile.open(testFile);
  try {
    return evaluateHere(model, file, { batchSize, bptt });
  } finally {
    file.close();
  }
}

const config = (over: Partial<TrainerConfig>): TrainerConfig => tinyConfig({ optimizer: { kind: 'adam', lr: 0.01 }, epochs: 2, ...over });

describe('Trainer.evaluate', () => {
  for (const N of [1, 2]) {
    test(`${N} worker${N === 1 ? '' : 's'}: after run(), the single-process perplexity of the trained parameters`, async () => {
      const rec = new Recorder();
      const trainer = new Trainer(config({ workers: N }), { log: rec.log, onEvent: rec.onEvent });
      try {
        await trainer.run();
        const r = await trainer.evaluate(testFile, { batch: 4, bptt: 5 });
        const here = perplexityHere(trainer, 4, 5);
        expect(r.tokens).toBe(4 * 50);
        expect(r.tokens).toBe(here.tokens);
        expect(Math.abs(r.perplexity - here.ppl) / here.ppl).toBeLessThan(1e-5);
        expect(r.perplexity).toBeCloseTo(Math.exp(r.loss), 10);
        expect(r.perplexity).toBeLessThan(23); // trained: better than uniform over the vocabulary
        expect(rec.lines.at(-1)).toBe(`trainer: evaluated ${testFile} at step 24: loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)} over 200 tokens (4 lanes × bptt 5)`);
        // The same ids from memory, on the workers the first call started: the same sums.
        expect(await trainer.evaluate(testIds, { batch: 4, bptt: 5 })).toEqual(r);
        // The defaults are the training batch (8 lanes) and window (6).
        const d = await trainer.evaluate(testFile);
        expect(d.tokens).toBe(8 * 24);
        expect(Math.abs(d.perplexity - perplexityHere(trainer, 8, 6).ppl) / d.perplexity).toBeLessThan(1e-5);
        // evaluate() emits no event: the caller has the result.
        expect(rec.of('eval')).toHaveLength(0);
      } finally {
        await trainer.close();
      }
      await trainer.close(); // a second close does nothing
      await expect(trainer.evaluate(testFile)).rejects.toThrow('Trainer.evaluate: the trainer is closed');
    }, 90_000);
  }

  test('before run(): the initial parameters; run() then takes over the threads', async () => {
    const trainer = new Trainer(config({ workers: 2 }), { log: false });
    try {
      const before = await trainer.evaluate(testFile, { batch: 4, bptt: 5 });
      expect(Math.abs(before.perplexity - perplexityHere(trainer, 4, 5).ppl) / before.perplexity).toBeLessThan(1e-5);
      const result = await trainer.run();
      expect(result.step).toBe(24);
      const after = await trainer.evaluate(testFile, { batch: 4, bptt: 5 });
      expect(after.perplexity).toBeLessThan(before.perplexity);
    } finally {
      await trainer.close();
    }
  }, 90_000);

  test('refuses bad arguments, naming them, and calls while run() is in progress', async () => {
    const trainer = new Trainer(config({ workers: 2 }), {
      log: false,
      onEvent: async (e) => {
        if (e.type === 'step' && e.step === 1) {
          await expect(trainer.evaluate(testFile)).rejects.toThrow('Trainer.evaluate: run() is in progress; evaluate after it returns (during training, config.eval evaluates data.valid)');
        }
      },
    });
    try {
      await expect(trainer.evaluate(testFile, { batch: 3 })).rejects.toThrow('Trainer.evaluate: options.batch (3) is not divisible by workers (2): every worker evaluates the same number of lanes');
      await expect(trainer.evaluate(testFile, { bptt: 0 })).rejects.toThrow('Trainer.evaluate: options.bptt must be an integer >= 1, got 0');
      await expect(trainer.evaluate(testFile, { lanes: 4 } as never)).rejects.toThrow("Trainer.evaluate: unknown option 'lanes' (known: batch, bptt)");
      await expect(trainer.evaluate(new Int32Array(0))).rejects.toThrow('Trainer.evaluate: source must be a token file path or a non-empty Int32Array of ids, got <0 tokens in memory>');
      await expect(trainer.evaluate(tokens(9), { batch: 8 })).rejects.toThrow(/^Trainer\.evaluate: <9 tokens in memory>: LaneBatcher: 9 tokens give 1 per lane for batchSize 8/);
      await expect(trainer.evaluate(path.join(dir, 'missing.tok'))).rejects.toThrow(/missing\.tok/);
      await trainer.run();
    } finally {
      await trainer.close();
    }
  }, 90_000);
});
