/*
 * A run folder holds everything one training run produced:
 *
 *   runs/<name>-<UTC timestamp>/
 *     config.json      the resolved config (also inside every checkpoint)
 *     vocab.txt        the vocabulary (merges.txt for BPE), so the folder alone can sample and evaluate
 *     metrics.jsonl    one JSON object per line: every step, every evaluation (see Metric)
 *     checkpoints/     ckpt-<step>.loom, the newest train.keepCheckpoints kept
 *     report.html      the curves and the final figures
 *     report.svg       the loss and perplexity curves, train and validation
 *     sample.txt       text generated at the end
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints } from '@loom/core';
import { ConfigError, type TrainConfig } from './config.js';

export type Metric =
  | {
      type: 'step';
      step: number;
      epoch: number; // from 1
      loss: number;
      ppl: number;
      lr: number;
      /** Training tokens consumed so far in the run (over every worker). */
      tokens: number;
      /** Seconds of training so far in the run (resumes add to it). */
      time: number;
      gradNorm?: number;
    }
  | { type: 'eval'; split: 'valid' | 'test'; step: number; epoch: number; loss: number; ppl: number; tokens: number; time: number }
  | { type: 'resume'; step: number; checkpoint: string; at: string };

export function utcStamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15); // 20260101-120000
}

export class RunFolder {
  readonly dir: string;
  readonly checkpoints: string;

  constructor(dir: string) {
    this.dir = dir;
    this.checkpoints = path.join(dir, 'checkpoints');
  }

  /** A new folder <out>/<name>-<UTC timestamp> (a suffix if that exists already). */
  static create(config: TrainConfig, now = new Date()): RunFolder {
    fs.mkdirSync(config.out, { recursive: true });
    const base = path.join(config.out, `${config.name}-${utcStamp(now)}`);
    let dir = base;
    for (let i = 2; fs.existsSync(dir); i++) dir = `${base}-${i}`;
    fs.mkdirSync(dir);
    const run = new RunFolder(dir);
    fs.mkdirSync(run.checkpoints);
    return run;
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  writeConfig(config: TrainConfig): void {
    fs.writeFileSync(this.file('config.json'), JSON.stringify(config, null, 2) + '\n');
  }

  /** The metrics, parsed (an unfinished last line, from a crash, is skipped). */
  readMetrics(): Metric[] {
    const p = this.file('metrics.jsonl');
    if (!fs.existsSync(p)) return [];
    const out: Metric[] = [];
    for (const line of fs.readFileSync(p, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as Metric);
      } catch {
        /* a line cut by a crash */
      }
    }
    return out;
  }

  /**
   * Before resuming from the checkpoint of `step`: drops what was logged after it (those steps run again),
   * and any test evaluation, then notes the resume.
   */
  truncateMetricsForResume(step: number, checkpoint: string): void {
    const kept = this.readMetrics().filter((m) => m.step <= step && !(m.type === 'eval' && m.split === 'test'));
    kept.push({ type: 'resume', step, checkpoint: path.relative(this.dir, checkpoint), at: new Date().toISOString() });
    fs.writeFileSync(this.file('metrics.jsonl'), kept.map((m) => JSON.stringify(m)).join('\n') + '\n');
  }

  /** Appends metrics, one line each, written as they come (a crash keeps everything before it). */
  openMetrics(): MetricsWriter {
    return new MetricsWriter(this.file('metrics.jsonl'));
  }

  latestCheckpoint(): string | null {
    if (!fs.existsSync(this.checkpoints)) return null;
    return listCheckpoints(this.checkpoints).at(-1)?.path ?? null;
  }
}

export class MetricsWriter {
  private fd: number;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'a');
  }

  write(m: Metric): void {
    fs.writeSync(this.fd, JSON.stringify(m) + '\n');
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * What --resume names: a run folder (its newest checkpoint) or a checkpoint file (its run folder is the
 * folder above checkpoints/, if it is one).
 */
export function resolveResume(target: string): { run: RunFolder | null; checkpoint: string } {
  if (!fs.existsSync(target)) throw new ConfigError(`--resume: ${target} does not exist: expected a run folder or a checkpoint file`);
  if (fs.statSync(target).isDirectory()) {
    const run = new RunFolder(target);
    const ckpt = run.latestCheckpoint();
    if (!ckpt) throw new ConfigError(`--resume: the run folder ${target} has no checkpoint in ${run.checkpoints}`);
    return { run, checkpoint: ckpt };
  }
  const ckptDir = path.dirname(path.resolve(target));
  const runDir = path.dirname(ckptDir);
  const run = path.basename(ckptDir) === 'checkpoints' && fs.existsSync(path.join(runDir, 'config.json')) ? new RunFolder(runDir) : null;
  return { run, checkpoint: target };
}
