// Training speed of a word-level language model, Loom against PyTorch on this machine: issue 6's "less
// wall-clock than PyTorch". Loom's `pnpm train CONFIG` (data-parallel workers) and reference/word_lm.py (the
// same recipe in PyTorch, with T intra-op threads) train the same number of steps on the same training file,
// alternated `rounds` times in one invocation, so both see the same minutes of a shared, noisy machine.
//
//   pnpm bench:lm                                           WikiText-2, 200 steps, 2 rounds, Loom on the core
//                                                           count, PyTorch on 2 threads
//   pnpm bench:lm --steps=300 --rounds=3 --torch-threads=1,2 --json=docs/bench/lm.json
//   pnpm bench:lm --data=path/to/ptb-style-folder            any folder with train.txt, valid.txt, test.txt
//
// The figure is the speed after the first step (tokens of steps 2..N over their seconds), for both: Loom's
// from its metrics.jsonl, PyTorch's from its --json (steady_tokens_per_second); startup, data preparation and
// evaluation are left out of both. Evaluation runs on the first lines of valid.txt and test.txt only (a
// throughput benchmark, not a quality one). PyTorch is /usr/bin/python3 with OpenBLAS (OpenMP build), as in
// ../shared/BENCHMARKS.md; without it the table has Loom's rows only.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { median } from './lib/stats.js';
import { parseOptions, runMain } from './lib/cli.js';
import { ConfigError } from './lib/config.js';

interface Measurement {
  workload: string;
  backend: string;
  workers: number;
  mode: 'train';
  round: number;
  tokensPerSec: number;
}

const PYTHON = '/usr/bin/python3';
const BLAS = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

/** A folder with the full training file and the first `lines` lines of valid.txt and test.txt. */
function benchData(root: string, lines: number): string {
  for (const f of ['train.txt', 'valid.txt', 'test.txt']) {
    if (!fs.existsSync(path.join(root, f))) throw new ConfigError(`bench-lm: --data ${root} has no ${f} (a PTB-style folder: train.txt, valid.txt, test.txt)`);
  }
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'loom-bench-lm-'));
  fs.symlinkSync(path.resolve(root, 'train.txt'), path.join(dir, 'train.txt'));
  for (const f of ['valid.txt', 'test.txt']) {
    const head = fs.readFileSync(path.join(root, f), 'utf8').split('\n').slice(0, lines).join('\n');
    fs.writeFileSync(path.join(dir, f), `${head}\n`);
  }
  return dir;
}

/** Tokens per second over steps 2..N of a run's metrics.jsonl. */
function steadyTokensPerSec(metricsFile: string): number {
  const steps = fs.readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.includes('"type":"step"')).map((l) => JSON.parse(l) as { step: number; tokens: number; time: number });
  if (steps.length < 2) throw new Error(`bench-lm: ${metricsFile} has ${steps.length} step records; need at least 2`);
  const a = steps[0], b = steps[steps.length - 1];
  return (b.tokens - a.tokens) / (b.time - a.time);
}

function runLoom(o: { config: string; data: string; steps: number; workers: number; out: string }): number {
  const args = ['--import', 'tsx', 'scripts/train.ts', o.config, `--data.root=${o.data}`, `--train.maxSteps=${o.steps}`,
    `--train.workers=${o.workers}`, `--out=${o.out}`, '--name=bench-lm', '--sample.length=0'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const folder = /run folder (\S+)/.exec(r.stdout ?? '')?.[1];
  if (r.status !== 0 || !folder) throw new Error(`bench-lm: Loom's run failed (exit ${r.status}):\n${(r.stderr ?? '').slice(-2000)}${(r.stdout ?? '').slice(-2000)}`);
  return steadyTokensPerSec(path.join(folder, 'metrics.jsonl'));
}

function torchAvailable(): boolean {
  if (!fs.existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { env: { ...process.env, LD_LIBRARY_PATH: BLAS }, encoding: 'utf8' });
  return r.status === 0;
}

function runTorch(o: { data: string; steps: number; threads: number; json: string }): number {
  const args = ['reference/word_lm.py', '--data', o.data, '--max-steps', String(o.steps), '--epochs', '1', '--threads', String(o.threads),
    '--eval-tokens', '2000', '--log-seconds', '1000', '--json', o.json];
  const r = spawnSync(PYTHON, args, { env: { ...process.env, LD_LIBRARY_PATH: BLAS }, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`bench-lm: PyTorch's run failed (exit ${r.status}):\n${(r.stderr ?? '').slice(-2000)}`);
  const figures = JSON.parse(fs.readFileSync(o.json, 'utf8')) as { steady_tokens_per_second?: number | null };
  if (typeof figures.steady_tokens_per_second !== 'number') throw new Error('bench-lm: reference/word_lm.py wrote no steady_tokens_per_second (too few steps?)');
  return figures.steady_tokens_per_second;
}

runMain(async () => {
  const o = parseOptions('bench-lm', {
    config: 'wikitext2', // the Loom config (configs/) whose recipe reference/word_lm.py reproduces
    data: '../shared/data/wikitext-2', // a PTB-style folder: train.txt, valid.txt, test.txt
    steps: 200, // training steps per run (after which each evaluates briefly and stops)
    rounds: 2, // Loom and PyTorch alternated this many times
    workers: 0, // Loom's workers; 0: the core count
    'torch-threads': '2', // PyTorch's intra-op threads, a comma list (each is its own row)
    torch: true, // --torch=false: Loom only
    'eval-lines': 100, // lines of valid.txt and test.txt kept for the closing evaluations
    json: '', // also write one object per measurement here
  }, process.argv.slice(2));
  if (o.steps < 2) throw new ConfigError('bench-lm: --steps must be at least 2 (the figure is over steps 2..N)');
  const threads = o['torch-threads'].split(',').map(Number);
  if (threads.some((t) => !Number.isInteger(t) || t < 1)) throw new ConfigError(`bench-lm: --torch-threads must be a comma list of positive integers, got '${o['torch-threads']}'`);
  const workers = o.workers > 0 ? o.workers : availableParallelism();
  const data = benchData(o.data, o['eval-lines']);
  const out = fs.mkdtempSync(path.join(tmpdir(), 'loom-bench-lm-runs-'));
  const withTorch = o.torch && torchAvailable();
  if (o.torch && !withTorch) console.error(`bench-lm: ${PYTHON} with torch not found: Loom's rows only`);
  const workload = `${o.config} (${path.basename(path.resolve(o.data))})`;

  const results: Measurement[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      console.error(`round ${round}/${o.rounds}: Loom, ${workers} workers, ${o.steps} steps`);
      results.push({ workload, backend: 'loom', workers, mode: 'train', round, tokensPerSec: runLoom({ config: o.config, data, steps: o.steps, workers, out }) });
      if (!withTorch) continue;
      for (const t of threads) {
        console.error(`round ${round}/${o.rounds}: PyTorch, ${t} thread${t > 1 ? 's' : ''}, ${o.steps} steps`);
        results.push({ workload, backend: 'pytorch', workers: t, mode: 'train', round, tokensPerSec: runTorch({ data, steps: o.steps, threads: t, json: path.join(out, `torch-${round}-${t}.json`) }) });
      }
    }
  } finally {
    fs.rmSync(data, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  }

  const loom = median(results.filter((r) => r.backend === 'loom').map((r) => r.tokensPerSec));
  console.log(`\n${workload}: training tokens/s after the first step, ${o.steps} steps per run, load average ${loadavg()[0].toFixed(2)} at the end\n`);
  console.log('| system | workers / threads | ' + Array.from({ length: o.rounds }, (_, i) => `round ${i + 1}`).join(' | ') + ' | median | Loom ÷ this |');
  console.log('|---|---:|' + '---:|'.repeat(o.rounds + 2));
  const row = (name: string, backend: string, w: number): void => {
    const xs = results.filter((r) => r.backend === backend && r.workers === w).map((r) => r.tokensPerSec);
    if (xs.length === 0) return;
    console.log(`| ${name} | ${w} | ${xs.map((x) => x.toFixed(0)).join(' | ')} | ${median(xs).toFixed(0)} | ${backend === 'loom' ? '1' : (loom / median(xs)).toFixed(2)} |`);
  };
  row('Loom', 'loom', workers);
  for (const t of threads) row('PyTorch (OpenBLAS)', 'pytorch', t);
  if (o.json) {
    fs.writeFileSync(o.json, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`\nwrote ${o.json}`);
  }
});
