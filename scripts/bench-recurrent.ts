// Recurrent layer stacks, composed (cells of core ops, unrolled) against fused (core's recurrentSequence):
// forward + backward of the whole stack, single thread, float32 on the default (WebAssembly) backend.
//
//   pnpm bench:recurrent                     all workloads, table on stdout
//   pnpm bench:recurrent --quick             the small workloads, shorter timing budget
//   pnpm bench:recurrent --json out.json     also write one object per measurement
//   pnpm bench:recurrent --torch             also time torch.nn.LSTM/GRU on the same stack (/usr/bin/python3,
//                                            one thread, OpenBLAS as in /work/shared/BENCHMARKS.md)
//
// A measurement: forward of a [T, B, D] input through the stack from a zero state, a loss sum(output · w),
// backward into every parameter and the input. Warm-up iterations first (JIT), then the median over a time
// budget. tokens/s = T·B ÷ seconds per iteration. The machine is shared: take the best of a couple of runs.

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Generator, fromFunction, getBackend, mul, noGrad, sum } from '../packages/core/src/index.js';
import { RecurrentLayer, type CellKind } from '../packages/models/src/index.js';
import { median } from './lib/stats.js';
import { parseOptions } from './lib/cli.js';

interface Workload { name: string; kind: CellKind; layers: number; D: number; H: number; T: number; B: number }
interface Measurement {
  workload: string; implementation: 'composed' | 'fused' | 'torch'; pass: 'forward+backward' | 'forward';
  /** From wall-clock time. */
  tokensPerSecond: number; msPerIteration: number; gflops: number;
  /** From this process's CPU time: steadier on a loaded machine. */
  tokensPerCpuSecond: number; cpuMsPerIteration: number;
  /** Wall time of the composed version ÷ this one's (same workload and pass). */
  vsComposed: number;
  /** Fused only: CPU time of torch ÷ CPU time of fused, when torch was measured. */
  vsTorchCpu: number | null;
}

const WORKLOADS: Workload[] = [
  { name: 'LSTM 2x200 T20 B20', kind: 'lstm', layers: 2, D: 200, H: 200, T: 20, B: 20 },
  { name: 'GRU 2x200 T20 B20', kind: 'gru', layers: 2, D: 200, H: 200, T: 20, B: 20 },
  { name: 'LSTM 2x256 D64 T64 B32', kind: 'lstm', layers: 2, D: 64, H: 256, T: 64, B: 32 }, // W3's recurrent part
  { name: 'LSTM 2x650 T35 B20', kind: 'lstm', layers: 2, D: 650, H: 650, T: 35, B: 20 },
];

const defaults = {
  quick: false, // the small workloads, shorter timing budget
  torch: false, // also time torch.nn.LSTM/GRU on the same stack (/usr/bin/python3)
  json: '', // also write one object per measurement to this file
};

/** Forward FLOPs per token of the stack: every layer-direction does x·W_ihᵀ and h·W_hhᵀ. */
function forwardFlopsPerToken(w: Workload): number {
  const G = w.kind === 'lstm' ? 4 : w.kind === 'gru' ? 3 : 1;
  let f = 0;
  for (let l = 0; l < w.layers; l++) f += 2 * G * w.H * ((l === 0 ? w.D : w.H) + w.H);
  return f;
}

/**
 * Median seconds per call after `warm` warm-up calls, repeating until `budget` seconds (3 to 50 reps):
 * wall-clock time, and this process's CPU time (user + system), which is what to compare on a loaded
 * machine (when other processes take the cores, wall time grows and CPU time much less).
 */
function timeIt(call: () => void, warm: number, budget: number): { wall: number; cpu: number } {
  for (let i = 0; i < warm; i++) call();
  const wall: number[] = [], cpu: number[] = [];
  const start = performance.now();
  while (wall.length < 3 || (wall.length < 50 && (performance.now() - start) / 1000 < budget)) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    call();
    const c = process.cpuUsage(c0);
    wall.push((performance.now() - t0) / 1000);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

interface Times { fb: { wall: number; cpu: number }; fwd: { wall: number; cpu: number } }

function measure(w: Workload, implementation: 'composed' | 'fused', budget: number): Times {
  const g = new Generator(1);
  const model = new RecurrentLayer(w.kind, { inputSize: w.D, hiddenSize: w.H, numLayers: w.layers, generator: g, implementation });
  const x = fromFunction([w.T, w.B, w.D], () => g.uniform(-1, 1), { requiresGrad: true });
  const weights = fromFunction([w.T, w.B, w.H], () => g.uniform(-1, 1));
  const step = (): void => {
    model.zeroGrad();
    x.grad = null;
    const { output } = model.forward(x);
    sum(mul(output, weights)).backward();
  };
  const fb = timeIt(step, 3, budget);
  const fwd = timeIt(() => noGrad(() => model.forward(x)), 3, budget / 2);
  return { fb, fwd };
}

const TORCH_SCRIPT = String.raw`
import sys, time, json, statistics, torch
torch.set_num_threads(1)
kind, layers, D, H, T, B, budget = sys.argv[1], *map(int, sys.argv[2:7]), float(sys.argv[7])
torch.manual_seed(1)
model = (torch.nn.LSTM if kind == 'lstm' else torch.nn.GRU)(D, H, layers)
x = torch.rand(T, B, D, requires_grad=True)
w = torch.rand(T, B, H)
def step():
    model.zero_grad(); x.grad = None
    out, _ = model(x)
    (out * w).sum().backward()
def fwd():
    with torch.no_grad(): model(x)
def timeit(f, b):
    for _ in range(3): f()
    ts = []; cs = []; start = time.perf_counter()
    while len(ts) < 3 or (len(ts) < 50 and time.perf_counter() - start < b):
        t0 = time.perf_counter(); c0 = time.process_time(); f()
        ts.append(time.perf_counter() - t0); cs.append(time.process_time() - c0)
    return {'wall': statistics.median(ts), 'cpu': statistics.median(cs)}
print(json.dumps({'fb': timeit(step, budget), 'fwd': timeit(fwd, budget / 2)}))
`;

function measureTorch(w: Workload, budget: number): Times | null {
  const blas = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  try {
    const out = execFileSync('/usr/bin/python3', ['-c', TORCH_SCRIPT, w.kind, String(w.layers), String(w.D), String(w.H), String(w.T), String(w.B), String(budget)], {
      env: { ...process.env, ...(existsSync(blas) ? { LD_LIBRARY_PATH: blas } : {}), OMP_NUM_THREADS: '1' },
      encoding: 'utf8',
    });
    return JSON.parse(out) as Times;
  } catch (e) {
    console.error(`bench-recurrent: torch measurement failed for ${w.name}: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
}

function main(): void {
  const { quick, torch, json } = parseOptions('bench-recurrent', defaults, process.argv.slice(2));
  const workloads = quick ? WORKLOADS.filter((w) => w.H <= 256) : WORKLOADS;
  const budget = quick ? 1.5 : 4;
  console.log(`bench-recurrent: backend ${getBackend().name}, single thread, float32, forward from a zero state, load average ${loadavg()[0].toFixed(2)}`);
  const results: Measurement[] = [];
  const rows: string[][] = [];
  for (const w of workloads) {
    const tokens = w.T * w.B, flops = forwardFlopsPerToken(w) * tokens;
    const times: Record<string, Times | null> = {
      composed: measure(w, 'composed', budget),
      fused: measure(w, 'fused', budget),
      ...(torch ? { torch: measureTorch(w, budget) } : {}),
    };
    const base = times.composed!;
    for (const [impl, t] of Object.entries(times)) {
      if (!t) continue;
      for (const [pass, key, mult] of [['forward+backward', 'fb', 3], ['forward', 'fwd', 1]] as const) {
        const { wall, cpu } = t[key];
        const torchCpu = impl === 'fused' && times.torch ? times.torch[key].cpu : null;
        const m: Measurement = {
          workload: w.name, implementation: impl as Measurement['implementation'], pass,
          tokensPerSecond: tokens / wall, msPerIteration: wall * 1000, gflops: (mult * flops) / wall / 1e9,
          tokensPerCpuSecond: tokens / cpu, cpuMsPerIteration: cpu * 1000,
          vsComposed: base[key].wall / wall, vsTorchCpu: torchCpu === null ? null : torchCpu / cpu,
        };
        results.push(m);
        rows.push([w.name, impl, pass, m.tokensPerSecond.toFixed(0), m.msPerIteration.toFixed(2), m.gflops.toFixed(1),
          m.tokensPerCpuSecond.toFixed(0), `${m.vsComposed.toFixed(2)}x`, m.vsTorchCpu === null ? '' : `${m.vsTorchCpu.toFixed(2)}x`]);
      }
    }
  }
  const header = ['workload', 'implementation', 'pass', 'tokens/s', 'ms/iter', 'GFLOP/s', 'tokens/cpu-s', 'vs composed', 'fused vs torch (cpu)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log('tokens/s from wall time; tokens/cpu-s from this process\'s CPU time (steadier when the machine is loaded);'
    + ' vs composed: wall-time speed-up; fused vs torch: torch CPU time ÷ fused CPU time.');
  if (json) {
    writeFileSync(json, JSON.stringify({ benchmark: 'recurrent', backend: getBackend().name, loadAverage: loadavg()[0], results }, null, 2) + '\n');
    console.log(`wrote ${json}`);
  }
}

main();
