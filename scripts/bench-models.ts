// Language-model training throughput, single thread: tokens/s for the full training step on the workloads
// of ../shared/BENCHMARKS.md, beside PyTorch 1.13's figures from that file.
//
//   pnpm bench:models                          W1, W2, W3, W1-GRU; table on stdout
//   pnpm bench:models --workloads W1,W3        a subset
//   pnpm bench:models --steps 12               measured steps per workload (default 8, after 3 warm-up steps)
//   pnpm bench:models --json out.json          also write one object per workload
//   pnpm bench:models --torch                  also re-measure PyTorch on the same step in this run
//                                              (/usr/bin/python3, one thread, OpenBLAS as BENCHMARKS.md says)
//
// The step (what PyTorch's figures time too): embedding, the stacked recurrent layers, the projection to the
// vocabulary, cross-entropy, backward, clipping at global norm 5, an SGD update (lr 1), the hidden state
// carried into the next step detached (truncated BPTT). Token ids are uniform random from a seeded generator.
// The step is timed in three parts by cutting the graph at the recurrent output (the gradient is the same as
// one backward through everything):
//   recurrent: embedding + recurrent layers, forward and backward;
//   output:    the projection and cross-entropy, forward and backward (down to the recurrent output);
//   optimizer: clipping, the SGD update and zeroing the gradients.
// The figure is the median step over the measured steps. The machine is shared: check the load before
// trusting a ratio (the table prints the 1-minute load average).
//
// Targets (issue 4): ≥ 70% of PyTorch's tokens/s on W1, W3 and W1-GRU, ≥ 50% on W2.

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  FlatOptimizer, Generator, clipGradNorm, crossEntropy, flattenParameters, getBackend, tensor, type Tensor,
} from '../packages/core/src/index.js';
import { RNNLanguageModel, detachState, type LanguageModelConfig, type RecurrentState } from '../packages/models/src/index.js';
import { median } from './lib/stats.js';
import { parseOptions } from './lib/cli.js';
import { ConfigError } from './lib/config.js';

interface Workload {
  name: string;
  model: LanguageModelConfig;
  bptt: number;
  batch: number;
  /** PyTorch 1.13, 1 process, 1 thread, tokens/s: the median of ../shared/BENCHMARKS.md. */
  pytorch: number;
  /** The share of PyTorch's tokens/s that issue 4 asks for. */
  target: number;
}

const WORKLOADS: Workload[] = [
  { name: 'W1', model: { vocabSize: 10_000, embedSize: 200, hiddenSize: 200, numLayers: 2, cell: 'lstm' }, bptt: 20, batch: 20, pytorch: 2662, target: 0.7 },
  { name: 'W2', model: { vocabSize: 10_000, embedSize: 650, hiddenSize: 650, numLayers: 2, cell: 'lstm' }, bptt: 35, batch: 20, pytorch: 531, target: 0.5 },
  { name: 'W3', model: { vocabSize: 96, embedSize: 64, hiddenSize: 256, numLayers: 2, cell: 'lstm' }, bptt: 64, batch: 32, pytorch: 6358, target: 0.7 },
  { name: 'W1-GRU', model: { vocabSize: 10_000, embedSize: 200, hiddenSize: 200, numLayers: 2, cell: 'gru' }, bptt: 20, batch: 20, pytorch: 2785, target: 0.7 },
];

const CLIP = 5, LR = 1, WARMUP = 3;

interface Measurement {
  workload: string;
  backend: string;
  workers: 1;
  mode: 'train';
  tokensPerSec: number;
  ratioToPytorch: number;
  msOutput: number;
  msRecurrent: number;
  msOptimizer: number;
  /** PyTorch re-measured in this run (--torch), else null. */
  pytorchMeasured: number | null;
  /** tokens/s from the process's CPU time rather than wall time: what the step costs when the machine is
   *  shared (an estimate of the unloaded figure; V8's helper threads count too, so it errs low). */
  tokensPerSecCpu: number;
  pytorchMeasuredCpu: number | null;
  /** Median whole step (not written to --json). */
  msStep: number;
}

const defaults = {
  workloads: WORKLOADS.map((w) => w.name).join(','), // which of them, comma-separated
  steps: 8, // measured steps per workload (after WARMUP)
  json: '', // also write one object per workload to this file
  torch: false, // also re-measure PyTorch on the same step in this run
};

function parseArgs(argv: string[]): { workloads: Workload[]; steps: number; json: string; torch: boolean } {
  const o = parseOptions('bench-models', defaults, argv, { validate: (_, check) => check.int(1, 'steps') });
  const workloads = o.workloads.split(',').map((s) => s.trim()).filter(Boolean).map((n) => {
    const w = WORKLOADS.find((x) => x.name.toLowerCase() === n.toLowerCase());
    if (!w) throw new ConfigError(`bench-models: --workloads: unknown workload '${n}' (known: ${WORKLOADS.map((x) => x.name).join(', ')})`);
    return w;
  });
  return { ...o, workloads };
}

function randomIds(g: Generator, T: number, B: number, V: number): Tensor {
  return tensor(Int32Array.from({ length: T * B }, () => g.int(V)), [T, B], { dtype: 'int32' });
}

function measure(w: Workload, steps: number): Measurement {
  const { bptt: T, batch: B } = w;
  const model = new RNNLanguageModel({ ...w.model, seed: 1 });
  model.train();
  // Parameters and gradients in one flat buffer each, as the coordinator keeps them: clipping and SGD
  // are then single passes over one array.
  const flat = flattenParameters(model);
  const sgd = new FlatOptimizer(flat, 'sgd', { lr: LR });
  const g = new Generator(1234);
  let state: RecurrentState | null = null;
  const times = { output: [] as number[], recurrent: [] as number[], optimizer: [] as number[], total: [] as number[], cpu: [] as number[] };
  for (let s = 0; s < WARMUP + steps; s++) {
    const x = randomIds(g, T, B, w.model.vocabSize), y = randomIds(g, T, B, w.model.vocabSize);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const f = model.features(x, state); // [T, B, H]
    const cut = f.output.detach().requireGrad();
    const t1 = performance.now();
    const loss = crossEntropy(model.project(cut), y);
    loss.backward();
    const t2 = performance.now();
    f.output.backward(cut.grad!);
    const t3 = performance.now();
    clipGradNorm(flat.grads, CLIP);
    sgd.step();
    model.zeroGrad();
    const t4 = performance.now();
    const c1 = process.cpuUsage(c0);
    state = detachState(f.state);
    if (!Number.isFinite(loss.item())) throw new Error(`bench-models: ${w.name}: the loss became ${loss.item()}`);
    if (s >= WARMUP) {
      times.recurrent.push(t1 - t0 + (t3 - t2));
      times.output.push(t2 - t1);
      times.optimizer.push(t4 - t3);
      times.total.push(t4 - t0);
      times.cpu.push((c1.user + c1.system) / 1000);
    }
  }
  const tokensPerSec = (T * B) / (median(times.total) / 1000);
  return {
    workload: w.name, backend: getBackend().name, workers: 1, mode: 'train', tokensPerSec,
    ratioToPytorch: tokensPerSec / w.pytorch,
    msOutput: median(times.output), msRecurrent: median(times.recurrent), msOptimizer: median(times.optimizer),
    pytorchMeasured: null, tokensPerSecCpu: (T * B) / (median(times.cpu) / 1000), pytorchMeasuredCpu: null, msStep: median(times.total),
  };
}

// The same step in PyTorch, as ../shared/BENCHMARKS.md describes its scripts.
const TORCH_SCRIPT = `
import sys, time, json, torch, torch.nn as nn, torch.nn.functional as F
cell, V, E, H, L, T, B, steps = sys.argv[1], *map(int, sys.argv[2:9])
torch.set_num_threads(1); torch.manual_seed(0)
class LM(nn.Module):
    def __init__(s):
        super().__init__(); s.encoder = nn.Embedding(V, E)
        s.rnn = (nn.LSTM if cell == 'lstm' else nn.GRU)(E, H, L); s.decoder = nn.Linear(H, V)
    def forward(s, x, h):
        o, h = s.rnn(s.encoder(x), h); return s.decoder(o.reshape(-1, H)), h
m = LM(); opt = torch.optim.SGD(m.parameters(), lr=1)
h = None; times = []; cpu = []
for i in range(3 + steps):
    x = torch.randint(V, (T, B)); y = torch.randint(V, (T, B))
    t0 = time.perf_counter(); c0 = time.process_time()
    logits, h = m(x, h); loss = F.cross_entropy(logits, y.reshape(-1))
    opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(m.parameters(), 5); opt.step()
    h = tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
    if i >= 3: times.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
times.sort(); cpu.sort(); print(json.dumps([T * B / times[len(times) // 2], T * B / cpu[len(cpu) // 2]]))
`;

/** PyTorch's tokens/s by wall time and by CPU time. */
function measureTorch(w: Workload, steps: number): [number, number] {
  const blas = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  const m = w.model;
  const args = [m.cell, m.vocabSize, m.embedSize, m.hiddenSize, m.numLayers, w.bptt, w.batch, steps].map(String);
  const out = execFileSync('/usr/bin/python3', ['-c', TORCH_SCRIPT, ...args], {
    env: { ...process.env, ...(existsSync(blas) ? { LD_LIBRARY_PATH: blas } : {}), OMP_NUM_THREADS: '1' },
    encoding: 'utf8',
  });
  return JSON.parse(out) as [number, number];
}

function main(): void {
  const { workloads, steps, json, torch } = parseArgs(process.argv.slice(2));
  const results: Measurement[] = [];
  console.log(`bench:models: backend ${getBackend().name}, 1 thread, ${WARMUP} warm-up + ${steps} measured steps, load average ${loadavg()[0].toFixed(2)}`);
  const header = ['workload', 'tokens/s', 'PyTorch tokens/s', 'ratio', 'target', 'ms step', 'ms output', 'ms recurrent', 'ms optimizer', 'tokens/s (cpu)'];
  if (torch) header.splice(3, 0, 'PyTorch here', 'ratio here');
  if (torch) header.push('PyTorch here (cpu)', 'ratio (cpu)');
  const rows: string[][] = [];
  for (const w of workloads) {
    const r = measure(w, steps);
    if (torch) [r.pytorchMeasured, r.pytorchMeasuredCpu] = measureTorch(w, steps);
    results.push(r);
    const row = [
      w.name, r.tokensPerSec.toFixed(0), String(w.pytorch), `${r.ratioToPytorch.toFixed(2)}`, `${w.target.toFixed(2)}${r.ratioToPytorch >= w.target ? ' met' : ' missed'}`,
      r.msStep.toFixed(1), r.msOutput.toFixed(1), r.msRecurrent.toFixed(1), r.msOptimizer.toFixed(1),
    ];
    row.push(r.tokensPerSecCpu.toFixed(0));
    if (torch) row.splice(3, 0, r.pytorchMeasured!.toFixed(0), (r.tokensPerSec / r.pytorchMeasured!).toFixed(2));
    if (torch) row.push(r.pytorchMeasuredCpu!.toFixed(0), (r.tokensPerSecCpu / r.pytorchMeasuredCpu!).toFixed(2));
    rows.push(row);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log('PyTorch tokens/s: 1 process, 1 thread, from ../shared/BENCHMARKS.md; ratio and target against those.');
  if (torch) console.log('PyTorch here: the same step re-measured in this run (ratio here: Loom ÷ that), right after Loom\'s steps.');
  console.log('(cpu): tokens/s from the process\'s CPU time per step, the cost of a step whatever else runs (V8\'s helper threads included).');
  console.log(`ms columns: medians of each part (they need not add up to the median step). Load average now ${loadavg()[0].toFixed(2)}.`);
  if (json) {
    writeFileSync(json, JSON.stringify(results.map(({ pytorchMeasured, pytorchMeasuredCpu, msStep: _step, ...r }) => (torch ? { ...r, pytorchMeasured, pytorchMeasuredCpu } : r)), null, 2) + '\n');
    console.log(`wrote ${json}`);
  }
}

main();
