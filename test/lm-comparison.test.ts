// scripts/lib/lm-comparison.ts: reading a run's metrics.jsonl and reference/word_lm.py JSONs, and the
// epoch-by-epoch comparison that issue 6's quality check is read from.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareRuns, comparisonTable, readLoomRun, readReferenceRuns } from '../scripts/lib/lm-comparison.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-compare-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(file: string, text: string): string {
  const p = path.join(dir, file);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}

describe('lm-comparison', () => {
  const lines = [
    { type: 'step', step: 1, epoch: 1, loss: 10, tokens: 400, time: 1 },
    { type: 'step', step: 2, epoch: 1, loss: 9, tokens: 800, time: 2 },
    { type: 'eval', split: 'valid', step: 2, epoch: 1, loss: 6.2, ppl: 500, tokens: 800, time: 3 },
    { type: 'step', step: 3, epoch: 2, loss: 8, tokens: 1200, time: 4 },
    { type: 'eval', split: 'valid', step: 4, epoch: 2, loss: 5.8, ppl: 330, tokens: 1600, time: 6 },
    { type: 'eval', split: 'test', step: 4, epoch: 0, loss: 5.7, ppl: 300, tokens: 1600, time: 7 },
  ];
  write('run/metrics.jsonl', `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  const ref = (seed: number, v: number[], test: number): void => {
    write(`ref/word_lm_seed${seed}.json`, JSON.stringify({ device: 'cuda', train_seconds: 9, test_ppl: test, history: v.map((p, i) => ({ epoch: i + 1, valid_ppl: p })) }));
  };
  ref(1, [490, 340, 270], 170);
  ref(2, [510, 342, 280], 176);
  write('ref/notes.txt', 'not json');

  it('reads the validation of each epoch, the test, the tokens and the time of a run', () => {
    const run = readLoomRun(path.join(dir, 'run'));
    expect(run.epochs).toEqual([{ epoch: 1, validPpl: 500, time: 3 }, { epoch: 2, validPpl: 330, time: 6 }]);
    expect(run.testPpl).toBe(300);
    expect(run.tokens).toBe(1200);
    expect(run.seconds).toBe(7);
  });

  it('compares epoch by epoch against the mean of the reference runs, and the test', () => {
    const rows = compareRuns(readLoomRun(path.join(dir, 'run')), readReferenceRuns(path.join(dir, 'ref')));
    expect(rows.map((r) => r.epoch)).toEqual([1, 2, 3, 'test']);
    expect(rows[0]).toMatchObject({ loom: 500, referenceMean: 500, referenceMin: 490, referenceMax: 510, relative: 0 });
    expect(rows[1].relative).toBeCloseTo(330 / 341 - 1, 12);
    expect(rows[2]).toMatchObject({ epoch: 3, loom: null, relative: null, referenceMean: 275 });
    expect(rows[3]).toMatchObject({ loom: 300, referenceMean: 173 });
    const table = comparisonTable(rows, readLoomRun(path.join(dir, 'run')));
    expect(table).toContain('| 2 | 330.0 | 341.0 [340.0–342.0] | -3.2% |');
    expect(table).toContain('| **test** | 300.0 | 173.0 [170.0–176.0] | +73.4% |');
  });

  it('says what is wrong with its inputs', () => {
    expect(() => readLoomRun(path.join(dir, 'ref'))).toThrow(/no metrics.jsonl in .*ref/);
    expect(() => readReferenceRuns(path.join(dir, 'nowhere'))).toThrow(/does not exist/);
    write('bad/x.json', JSON.stringify({ valid_ppl: 1 }));
    expect(() => readReferenceRuns(path.join(dir, 'bad'))).toThrow(/has no 'history'/);
    write('broken/metrics.jsonl', '{"type":"step"}\n{oops\n');
    expect(() => readLoomRun(path.join(dir, 'broken'))).toThrow(/metrics.jsonl:2: not a JSON line/);
  });
});
