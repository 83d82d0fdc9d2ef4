// Loom's run against PyTorch's reference runs, epoch by epoch: issue 6's quality check (validation and test
// perplexity within 2% of PyTorch's with the same recipe) and the wall-clock each took. scripts/compare-lm.ts
// is the command; this module reads and compares, so that the test can feed it small files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './config.js';
import { formatDuration } from './progress.js';

export interface EpochFigure {
  epoch: number;
  validPpl: number;
  /** Seconds of the run when this epoch's validation finished (training and evaluation so far). */
  time?: number;
}

export interface LoomRun {
  dir: string;
  epochs: EpochFigure[];
  testPpl: number | null;
  /** Seconds of the whole run, to the end of the test evaluation (or the last record). */
  seconds: number;
  tokens: number;
}

export interface ReferenceRun {
  file: string;
  epochs: EpochFigure[];
  testPpl: number | null;
  /** What the reference ran on (e.g. cuda), and its own training seconds. */
  device: string;
  trainSeconds: number;
}

/** Reads a Loom run folder's metrics.jsonl: the last validation per epoch, the test, the time and tokens. */
export function readLoomRun(dir: string): LoomRun {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) throw new ConfigError(`compare-lm: no metrics.jsonl in ${dir} (give the run folder that pnpm train printed)`);
  const byEpoch = new Map<number, EpochFigure>();
  let testPpl: number | null = null, seconds = 0, tokens = 0;
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let r: { type?: string; split?: string; epoch?: number; ppl?: number; time?: number; tokens?: number };
    try {
      r = JSON.parse(line);
    } catch {
      throw new ConfigError(`compare-lm: ${file}:${i + 1}: not a JSON line`);
    }
    if (typeof r.time === 'number') seconds = Math.max(seconds, r.time);
    if (r.type === 'step' && typeof r.tokens === 'number') tokens = Math.max(tokens, r.tokens);
    if (r.type === 'eval' && r.split === 'valid' && typeof r.epoch === 'number' && typeof r.ppl === 'number') {
      byEpoch.set(r.epoch, { epoch: r.epoch, validPpl: r.ppl, ...(typeof r.time === 'number' ? { time: r.time } : {}) });
    }
    if (r.type === 'eval' && r.split === 'test' && typeof r.ppl === 'number') testPpl = r.ppl;
  });
  return { dir, epochs: [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch), testPpl, seconds, tokens };
}

/** Reads the reference JSONs (reference/word_lm.py --json) in a folder, or one file. */
export function readReferenceRuns(where: string): ReferenceRun[] {
  if (!fs.existsSync(where)) throw new ConfigError(`compare-lm: --reference ${where} does not exist`);
  const files = fs.statSync(where).isDirectory()
    ? fs.readdirSync(where).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(where, f))
    : [where];
  if (files.length === 0) throw new ConfigError(`compare-lm: no .json files in ${where}`);
  return files.map((file) => {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      history?: { epoch: number; valid_ppl: number }[]; test_ppl?: number; device?: string; train_seconds?: number;
    };
    if (!Array.isArray(r.history)) throw new ConfigError(`compare-lm: ${file} has no 'history' (not a reference/word_lm.py --json file)`);
    return {
      file,
      epochs: r.history.map((h) => ({ epoch: h.epoch, validPpl: h.valid_ppl })),
      testPpl: typeof r.test_ppl === 'number' ? r.test_ppl : null,
      device: r.device ?? 'unknown',
      trainSeconds: r.train_seconds ?? NaN,
    };
  });
}

export interface ComparisonRow {
  epoch: number | 'test';
  loom: number | null;
  referenceMean: number | null;
  referenceMin: number | null;
  referenceMax: number | null;
  /** loom / referenceMean − 1. */
  relative: number | null;
}

const stats = (xs: number[]): { mean: number; min: number; max: number } | null =>
  xs.length === 0 ? null : { mean: xs.reduce((a, b) => a + b, 0) / xs.length, min: Math.min(...xs), max: Math.max(...xs) };

/** One row per epoch any side reached, then the test row. */
export function compareRuns(loom: LoomRun, references: ReferenceRun[]): ComparisonRow[] {
  const epochs = new Set<number>([...loom.epochs.map((e) => e.epoch), ...references.flatMap((r) => r.epochs.map((e) => e.epoch))]);
  const row = (epoch: number | 'test', mine: number | null, theirs: number[]): ComparisonRow => {
    const s = stats(theirs);
    return {
      epoch, loom: mine,
      referenceMean: s?.mean ?? null, referenceMin: s?.min ?? null, referenceMax: s?.max ?? null,
      relative: mine !== null && s ? mine / s.mean - 1 : null,
    };
  };
  const rows = [...epochs].sort((a, b) => a - b).map((epoch) => row(
    epoch,
    loom.epochs.find((e) => e.epoch === epoch)?.validPpl ?? null,
    references.flatMap((r) => r.epochs.filter((e) => e.epoch === epoch).map((e) => e.validPpl)),
  ));
  rows.push(row('test', loom.testPpl, references.flatMap((r) => (r.testPpl === null ? [] : [r.testPpl]))));
  return rows;
}

const fmt = (x: number | null, digits = 1): string => (x === null ? '–' : x.toFixed(digits));
const pct = (x: number | null): string => (x === null ? '–' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`);

/** The markdown table of compareRuns' rows. */
export function comparisonTable(rows: ComparisonRow[], loom: LoomRun): string {
  const lines = [
    '| epoch | Loom valid ppl | PyTorch valid ppl, mean [min–max] | Loom ÷ PyTorch − 1 | Loom time at this point |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const t = r.epoch === 'test' ? (loom.testPpl === null ? null : loom.seconds) : loom.epochs.find((e) => e.epoch === r.epoch)?.time ?? null;
    const ref = r.referenceMean === null ? '–' : `${fmt(r.referenceMean)} [${fmt(r.referenceMin)}–${fmt(r.referenceMax)}]`;
    lines.push(`| ${r.epoch === 'test' ? '**test**' : r.epoch} | ${fmt(r.loom)} | ${ref} | ${pct(r.relative)} | ${t === null ? '–' : formatDuration(t)} |`);
  }
  return lines.join('\n');
}
