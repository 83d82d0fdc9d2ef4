// Single-thread GEMM throughput of the reference kernel and the WebAssembly SIMD kernels.
//
//   pnpm bench:kernels                       all shapes, table on stdout
//   pnpm bench:kernels --quick               fewer shapes, shorter timing budget
//   pnpm bench:kernels --json out.json       also write one object per measurement
//   pnpm bench:kernels --shape 700x650x2600  only this shape (M×K×N; repeatable)
//
// Each measurement: one warm-up call (it also lets V8 tier the wasm up to TurboFan), then the median
// of repetitions filling a time budget (the reference, slow on big shapes, gets fewer). Modes are the
// products backward needs: nn = A·B, tn = Aᵀ·B, nt = A·Bᵀ. The machine is shared: take the best of a
// couple of runs.

import { writeFileSync } from 'node:fs';
import { Generator } from '../packages/core/src/random.js';
import { gemmReference } from '../packages/core/src/kernels/gemm-reference.js';
import { createWasmGemm, relaxedSimdSupported, wasmSimdSupported, type WasmGemm } from '../packages/core/src/kernels/wasm/index.js';
import { parseOptions } from './lib/cli.js';
import { ConfigError } from './lib/config.js';

type Mode = 'nn' | 'tn' | 'nt';
type BackendName = 'reference' | 'wasm-simd' | 'wasm-relaxed';

interface Measurement {
  shape: string; // "MxKxN": op(A) is M×K, op(B) is K×N
  mode: Mode;
  backend: BackendName;
  workers: 1;
  gflops: number;
  ratio: number; // gflops ÷ the reference's gflops for the same shape and mode
}

const defaults = {
  quick: false, // fewer shapes, shorter timing budget
  json: '', // also write one object per measurement to this file
  shape: [] as string[], // only these shapes, MxKxN (repeatable); none: all
};

function parseArgs(argv: string[]): { quick: boolean; json: string; shapes: [number, number, number][] } {
  const { quick, json, shape } = parseOptions('bench-kernels', defaults, argv);
  const shapes = shape.map((s) => {
    const dims = s.split('x').map(Number);
    if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0)) throw new ConfigError(`bench-kernels: --shape must be MxKxN with positive integers, got '${s}'`);
    return dims as [number, number, number];
  });
  return { quick, json, shapes };
}

/** [M, K, N]: square products, then a word-level LSTM language model's step (batch 20, H 200/650, V 10000). */
const ALL_SHAPES: [number, number, number][] = [
  [256, 256, 256], [512, 512, 512], [1024, 1024, 1024],
  [20, 200, 800], // recurrent product of one time step, H = 200
  [400, 200, 10000], // output projection of a 20×20 window, H = 200
  [700, 650, 2600], // input product of a 35×20 window, H = 650
  [700, 650, 10000], // output projection, H = 650
];
const QUICK_SHAPES: [number, number, number][] = [[256, 256, 256], [1024, 1024, 1024], [20, 200, 800], [700, 650, 2600]];
const MODES: Mode[] = ['nn', 'tn', 'nt'];

type Gemm = (tA: boolean, tB: boolean, m: number, n: number, k: number, a: Float32Array, ao: number, lda: number,
  b: Float32Array, bo: number, ldb: number, c: Float32Array, co: number, ldc: number, acc: boolean) => void;

/** Median seconds per call: one warm-up, then repetitions until `budget` seconds (at least minReps, at most maxReps). */
function timeIt(call: () => void, budget: number, minReps: number, maxReps: number): number {
  const t0 = performance.now();
  call();
  const first = (performance.now() - t0) / 1000;
  if (first > budget) return first; // a long call is its own warm-up: JIT warm-up is negligible beside it
  const times: number[] = [];
  const reps = Math.max(minReps, Math.min(maxReps, Math.ceil(budget / Math.max(first, 1e-6))));
  for (let r = 0; r < reps; r++) {
    const s = performance.now();
    call();
    times.push((performance.now() - s) / 1000);
  }
  times.sort((x, y) => x - y);
  return times[times.length >> 1];
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const { quick, json } = args;
  const backends: [BackendName, Gemm][] = [['reference', gemmReference as Gemm]];
  const bind = (k: WasmGemm): Gemm => k.gemm.bind(k) as Gemm;
  if (wasmSimdSupported()) backends.push(['wasm-simd', bind(createWasmGemm({ relaxed: false })!)]);
  else console.log('WebAssembly SIMD is not supported here: wasm rows are skipped');
  if (relaxedSimdSupported()) backends.push(['wasm-relaxed', bind(createWasmGemm({ relaxed: true })!)]);
  else console.log('relaxed SIMD does not validate here: wasm-relaxed rows are skipped');

  const shapes = args.shapes.length > 0 ? args.shapes : quick ? QUICK_SHAPES : ALL_SHAPES;
  const budget = quick ? 0.3 : 1.0;
  const rng = new Generator(42); // seeded: every run multiplies the same numbers
  const results: Measurement[] = [];
  const header = ['shape M×K×N', 'mode', ...backends.map(([name]) => name === 'reference' ? 'reference GF/s' : `${name} GF/s (×ref)`)];
  const rows: string[][] = [];
  console.log(`single thread, GFLOP/s = 2·M·N·K / median time; node ${process.version}`);
  for (const [m, k, n] of shapes) {
    const a = Float32Array.from({ length: m * k }, () => rng.uniform(-0.5, 0.5));
    const b = Float32Array.from({ length: k * n }, () => rng.uniform(-0.5, 0.5));
    const c = new Float32Array(m * n);
    const shape = `${m}x${k}x${n}`;
    const flop = 2 * m * n * k;
    for (const mode of MODES) {
      const tA = mode[0] === 't', tB = mode[1] === 't';
      // The same numbers serve every mode: only the stored layout (and so lda/ldb) changes.
      const lda = tA ? m : k, ldb = tB ? k : n;
      const row = [shape, mode];
      let refGflops = NaN;
      for (const [name, gemm] of backends) {
        const isRef = name === 'reference';
        const seconds = timeIt(() => gemm(tA, tB, m, n, k, a, 0, lda, b, 0, ldb, c, 0, n, false), isRef ? budget * 2 : budget, isRef ? 1 : 5, 200);
        const gflops = flop / seconds / 1e9;
        if (isRef) refGflops = gflops;
        const ratio = gflops / refGflops;
        results.push({ shape, mode, backend: name, workers: 1, gflops: round(gflops), ratio: round(ratio) });
        row.push(isRef ? gflops.toFixed(2) : `${gflops.toFixed(1)} (${ratio.toFixed(0)}×)`);
      }
      rows.push(row);
      console.log(row.join('  '));
    }
  }
  console.log();
  printTable(header, rows);
  if (json) {
    writeFileSync(json, JSON.stringify(results, null, 2) + '\n');
    console.log(`wrote ${results.length} measurements to ${json}`);
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => '| ' + cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ') + ' |';
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(r));
}

main();
