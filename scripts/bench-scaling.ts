// Data-parallel scaling of the coordinator: tokens/s of the full training step on the language-model
// workloads W1 and W2 (../shared/BENCHMARKS.md) for 1, 2, ... workers, with
//   weak scaling:   the per-worker batch fixed at 20 lanes (global batch 20·N),
//   strong scaling: the global batch fixed at 20 lanes (20/N per worker).
// Efficiency = tokens/s(N) / (N × tokens/s of 1 worker at the same per-worker batch), as the PyTorch DDP
// figures in BENCHMARKS.md are computed. Each worker's step time is broken down into compute, barrier
// wait, reduce (reduce-scatter) and update (clip + optimizer on its slice).
//
//   pnpm bench:scaling
//   pnpm bench:scaling -- --workloads=W1 --steps=10 --json=scaling.json     (also writes scaling.svg)
//
// Targets (issue 5), 2 workers on the 2-core machine: weak-scaling efficiency >= 0.90 on W1 and
// >= 0.95 on W2 (PyTorch DDP: 0.76 and 0.75); reduce + update under 5% of the step.
// Measure with nothing else running: two workers need both cores.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as echarts from 'echarts';
import { Trainer, type StepEvent } from '@loom/coordinator';
import { median } from './lib/stats.js';
import { parseOptions } from './lib/cli.js';

const defaults = {
  workloads: 'W1,W2', // which workloads, comma-separated
  modes: 'weak,strong', // which scaling modes
  workers: os.availableParallelism(), // the most workers (1, 2, ... up to this)
  steps: 6, // measured steps per configuration (the median is reported)
  warmup: 2, // steps run first and not measured
  backend: 'wasm', // the workers' compute backend
  json: '', // write the rows here as a JSON array, and the chart beside it (same name, .svg)
};
type Options = typeof defaults;

const WORKLOADS = {
  W1: { hidden: 200, embed: 200, vocab: 10_000, bptt: 20, layers: 2 },
  W2: { hidden: 650, embed: 650, vocab: 10_000, bptt: 35, layers: 2 },
} as const;
type WorkloadName = keyof typeof WORKLOADS;

/** The batch every measurement is about: 20 lanes (per worker for weak scaling, in all for strong). */
const BATCH = 20;

function parseArgs(argv: string[]): Options {
  return parseOptions('bench-scaling', defaults, argv, {
    validate: (o, check) => {
      check.int(1, 'workers', 'steps');
      check.int(0, 'warmup');
      for (const w of o.workloads.split(',')) if (!(w in WORKLOADS)) check.fail('workloads', `a list of ${Object.keys(WORKLOADS).join(', ')} (unknown workload '${w}')`);
      for (const m of o.modes.split(',')) if (m !== 'weak' && m !== 'strong') check.fail('modes', `a list of weak, strong (unknown mode '${m}')`);
    },
  });
}

interface Measurement {
  workload: WorkloadName;
  backend: string;
  workers: number;
  globalBatch: number;
  tokensPerSec: number;
  msStep: number;
  /** Medians over the measured steps of the mean over workers. */
  msCompute: number;
  msWait: number;
  msReduce: number;
  msUpdate: number;
}

interface Row extends Measurement {
  mode: 'weak' | 'strong';
  perWorkerBatch: number;
  efficiency: number;
  /** tokens/s over 1 worker's at the global batch of 20 (strong scaling's speedup). */
  speedup: number;
  /** (reduce + update) / step time. */
  reduceUpdateShare: number;
}

/** Uniform random ids, as in BENCHMARKS.md, enough for `windows` windows of B lanes. */
function randomTokens(n: number, vocab: number): Int32Array {
  let s = 0x9e3779b9;
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * vocab);
  });
}

const cache = new Map<string, Measurement>();

async function measure(o: Options, name: WorkloadName, workers: number, globalBatch: number): Promise<Measurement> {
  const key = `${name}/${workers}/${globalBatch}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const w = WORKLOADS[name];
  const steps = o.warmup + o.steps;
  const trainer = new Trainer({
    model: { module: '@loom/models', export: 'RNNLanguageModel', config: { vocabSize: w.vocab, embedSize: w.embed, hiddenSize: w.hidden, numLayers: w.layers, cell: 'lstm' } },
    data: { train: randomTokens(globalBatch * (steps * w.bptt + 1), w.vocab) },
    optimizer: { kind: 'sgd', lr: 1 },
    clipNorm: 5,
    workers,
    globalBatch,
    bptt: w.bptt,
    maxSteps: steps,
    backend: o.backend,
    faults: { stepTimeoutMs: 600_000 },
  }, { log: false, handleSigint: false });
  const events: StepEvent[] = [];
  for await (const e of trainer) if (e.type === 'step') events.push(e);
  const measured = events.slice(o.warmup);
  const meanOver = (e: StepEvent, k: 'msCompute' | 'msWait' | 'msReduce' | 'msUpdate'): number => e.workers.reduce((a, x) => a + x[k], 0) / e.workers.length;
  const msStep = median(measured.map((e) => e.ms));
  const m: Measurement = {
    workload: name, backend: o.backend, workers, globalBatch,
    tokensPerSec: (globalBatch * w.bptt) / (msStep / 1000),
    msStep,
    msCompute: median(measured.map((e) => meanOver(e, 'msCompute'))),
    msWait: median(measured.map((e) => meanOver(e, 'msWait'))),
    msReduce: median(measured.map((e) => meanOver(e, 'msReduce'))),
    msUpdate: median(measured.map((e) => meanOver(e, 'msUpdate'))),
  };
  cache.set(key, m);
  process.stderr.write(`  ${name} ${workers} worker${workers === 1 ? '' : 's'}, global batch ${globalBatch}: ${m.tokensPerSec.toFixed(0)} tokens/s (${msStep.toFixed(0)} ms/step)\n`);
  return m;
}

function fmtRow(r: Row): string {
  const cells = [
    r.workload, r.mode, String(r.workers), String(r.globalBatch), String(r.perWorkerBatch), r.tokensPerSec.toFixed(0),
    r.efficiency.toFixed(2), r.speedup.toFixed(2), r.msStep.toFixed(0), r.msCompute.toFixed(0), r.msWait.toFixed(1),
    r.msReduce.toFixed(1), r.msUpdate.toFixed(1), (100 * r.reduceUpdateShare).toFixed(1) + '%',
  ];
  return `| ${cells.join(' | ')} |`;
}

/** Two panels: tokens/s against workers (a line per workload and mode, with the ideal), and the time breakdown. */
function chart(rows: Row[]): string {
  const c = echarts.init(null, null, { renderer: 'svg', ssr: true, width: 1200, height: 520 });
  const lines = [...new Set(rows.map((r) => `${r.workload} ${r.mode}`))];
  const maxN = Math.max(...rows.map((r) => r.workers));
  const xs = Array.from({ length: maxN }, (_, i) => String(i + 1));
  const bars = rows.map((r) => `${r.workload} ${r.mode} ×${r.workers}`);
  c.setOption({
    animation: false,
    backgroundColor: '#fff',
    title: [
      { text: 'Tokens/s by workers (dashed: ideal)', left: '3%', top: 8, textStyle: { fontSize: 14 } },
      { text: 'Time per step by phase (ms, mean over workers)', left: '53%', top: 8, textStyle: { fontSize: 14 } },
    ],
    legend: { bottom: 4, type: 'plain' },
    grid: [{ left: '6%', right: '53%', top: 70, bottom: 80 }, { left: '56%', right: '3%', top: 70, bottom: 80 }],
    xAxis: [
      { type: 'category', data: xs, gridIndex: 0, name: 'workers', nameLocation: 'middle', nameGap: 25 },
      { type: 'category', data: bars, gridIndex: 1, axisLabel: { rotate: 30, fontSize: 9, interval: 0 } },
    ],
    yAxis: [{ type: 'value', gridIndex: 0, name: 'tokens/s' }, { type: 'value', gridIndex: 1, name: 'ms' }],
    series: [
      ...lines.flatMap((l) => {
        const rs = rows.filter((r) => `${r.workload} ${r.mode}` === l);
        const byN = new Map(rs.map((r) => [r.workers, r]));
        const one = byN.get(1);
        return [
          { name: l, type: 'line', xAxisIndex: 0, yAxisIndex: 0, data: xs.map((n) => byN.get(Number(n))?.tokensPerSec ?? null), label: { show: true, formatter: (p: { dataIndex: number }) => { const r = byN.get(p.dataIndex + 1); return r ? `${r.tokensPerSec.toFixed(0)} (eff ${r.efficiency.toFixed(2)})` : ''; }, fontSize: 9 } },
          ...(one ? [{ name: `${l} ideal`, type: 'line', xAxisIndex: 0, yAxisIndex: 0, lineStyle: { type: 'dashed', width: 1 }, symbol: 'none', data: xs.map((n) => (rs[0].mode === 'weak' ? one.tokensPerSec * Number(n) : null)) }] : []),
        ];
      }).filter((s) => s.data.some((v) => v !== null)),
      ...(['msCompute', 'msWait', 'msReduce', 'msUpdate'] as const).map((k) => ({
        name: { msCompute: 'compute', msWait: 'barrier wait', msReduce: 'reduce', msUpdate: 'update' }[k],
        type: 'bar', stack: 'time', xAxisIndex: 1, yAxisIndex: 1, data: rows.map((r) => +r[k].toFixed(1)),
      })),
    ],
  });
  const svg = c.renderToSVGString();
  c.dispose();
  return svg;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const load = os.loadavg()[0];
  console.log(`bench-scaling: ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, Node ${process.version}, backend ${o.backend}, ${o.steps} measured steps after ${o.warmup} warm-up; load average ${load.toFixed(2)}${load > 0.5 ? ' (other work is running: figures are pessimistic)' : ''}`);
  const rows: Row[] = [];
  for (const name of o.workloads.split(',') as WorkloadName[]) {
    for (const mode of o.modes.split(',') as ('weak' | 'strong')[]) {
      for (let N = 1; N <= o.workers; N++) {
        if (mode === 'strong' && BATCH % N !== 0) continue;
        const B = mode === 'weak' ? BATCH * N : BATCH;
        const m = await measure(o, name, N, B);
        const perWorker = B / N;
        const oneSame = await measure(o, name, 1, perWorker); // 1 worker at the same per-worker batch
        const oneAt20 = await measure(o, name, 1, BATCH);
        rows.push({
          ...m, mode, perWorkerBatch: perWorker,
          efficiency: m.tokensPerSec / (N * oneSame.tokensPerSec),
          speedup: m.tokensPerSec / oneAt20.tokensPerSec,
          reduceUpdateShare: (m.msReduce + m.msUpdate) / m.msStep,
        });
      }
    }
  }
  console.log('\n| workload | mode | workers | global batch | per worker | tokens/s | efficiency | speedup | ms/step | compute | wait | reduce | update | reduce+update |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(fmtRow(r));
  console.log('\nefficiency: tokens/s(N) / (N × tokens/s of 1 worker at the same per-worker batch); speedup: over 1 worker at global batch 20.');
  console.log('PyTorch 1.13 DDP (Gloo), 2 × 1 thread, same machine kind (BENCHMARKS.md): W1 eff 0.76 (batch 20/rank), 0.69 (10/rank); W2 0.75, 0.82.');
  if (o.json) {
    fs.writeFileSync(o.json, JSON.stringify(rows, null, 2) + '\n');
    const svgPath = path.join(path.dirname(o.json), path.basename(o.json, path.extname(o.json)) + '.svg');
    fs.writeFileSync(svgPath, chart(rows));
    console.log(`wrote ${o.json} and ${svgPath}`);
  }
}

await main();
