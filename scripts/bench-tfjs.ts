// Training throughput on @loom/backend-tfjs: tokens/s of W2 (../shared/BENCHMARKS.md: 2-layer LSTM 650,
// vocabulary 10k, bptt 35, batch 20) with its kernels on a TF.js runtime, by default tfjs-node-gpu.
//
//   pnpm bench:tfjs                               W2 on tfjs-node-gpu (needs @tensorflow/tfjs-node-gpu and a GPU)
//   pnpm bench:tfjs --runtime tfjs-wasm           another runtime: tfjs-node-gpu, tfjs-node, tfjs-wasm, tfjs-cpu
//   pnpm bench:tfjs --workloads W1,W2,W3          other workloads of BENCHMARKS.md
//   pnpm bench:tfjs --steps 12                    measured steps (default 8, after 3 warm-up steps)
//   pnpm bench:tfjs --baseline                    also the default backend (wasm) on the same step, same run
//   pnpm bench:tfjs --json out.json               also write one object per row
//
// The step is the coordinator's for a device backend (and bench:models' otherwise): embedding, the stacked
// LSTM (the fused recurrent primitive), projection, cross-entropy and backward on the TF.js runtime; the
// gradients downloaded into a flat host buffer (mirrorParameters); clipping at global norm 5 and SGD (lr 1)
// on the host; the values uploaded back; the hidden state carried, detached. Token ids are uniform random
// from a seeded generator. Columns: the median step, and its parts: compute (forward + backward, ending
// with the loss read back, which waits for the device), download, update, upload.
//
// Run it on a machine with a GPU and tfjs-node-gpu installed (docs/backend-tfjs.md says how, offline too);
// choose the GPU with CUDA_VISIBLE_DEVICES. Where it has not been run, docs/backend-tfjs.md says so.

import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  FlatOptimizer, Generator, backend, clipGradNorm, flattenParameters, getBackend, mirrorParameters, setBackend, tensor,
  type Backend, type FlatParameters, type MirroredParameters, type Tensor,
} from '../packages/core/src/index.js';
import { RNNLanguageModel, detachState, type LanguageModelConfig, type RecurrentState } from '../packages/models/src/index.js';
import { TFJS_RUNTIMES, createTfjsBackend, type TfjsRuntime } from '../packages/backend-tfjs/src/index.js';
import { median } from './lib/stats.js';
import { parseOptions } from './lib/cli.js';
import { ConfigError } from './lib/config.js';

interface Workload {
  name: string;
  model: LanguageModelConfig;
  bptt: number;
  batch: number;
}

const WORKLOADS: Workload[] = [
  { name: 'W1', model: { vocabSize: 10_000, embedSize: 200, hiddenSize: 200, numLayers: 2, cell: 'lstm' }, bptt: 20, batch: 20 },
  { name: 'W2', model: { vocabSize: 10_000, embedSize: 650, hiddenSize: 650, numLayers: 2, cell: 'lstm' }, bptt: 35, batch: 20 },
  { name: 'W3', model: { vocabSize: 96, embedSize: 64, hiddenSize: 256, numLayers: 2, cell: 'lstm' }, bptt: 64, batch: 32 },
];

const CLIP = 5, LR = 1, WARMUP = 3;
const defaults = {
  runtime: 'tfjs-node-gpu', // the TF.js runtime: one of TFJS_RUNTIMES
  workloads: 'W2', // which of WORKLOADS, comma-separated
  steps: 8, // measured steps (after WARMUP)
  baseline: false, // also the default backend (wasm) on the same step, same run
  json: '', // also write one object per row to this file
};

interface Options {
  runtime: TfjsRuntime;
  workloads: Workload[];
  steps: number;
  baseline: boolean;
  json: string;
}

function parseArgs(argv: string[]): Options {
  const o = parseOptions('bench-tfjs', defaults, argv, {
    validate: (_, check) => {
      check.int(1, 'steps');
      check.oneOf('runtime', TFJS_RUNTIMES);
    },
  });
  const workloads = o.workloads.split(',').map((s) => s.trim()).filter(Boolean).map((n) => {
    const w = WORKLOADS.find((x) => x.name.toLowerCase() === n.toLowerCase());
    if (!w) throw new ConfigError(`bench-tfjs: --workloads: unknown workload '${n}' (known: ${WORKLOADS.map((x) => x.name).join(', ')})`);
    return w;
  });
  return { ...o, runtime: o.runtime as TfjsRuntime, workloads };
}

interface Row {
  workload: string;
  backend: string;
  tokensPerSec: number;
  msStep: number;
  msCompute: number;
  msDownload: number;
  msUpdate: number;
  msUpload: number;
}

function measure(w: Workload, be: Backend, steps: number): Row {
  const previous = getBackend();
  setBackend(be);
  try {
    const { bptt: T, batch: B } = w;
    const model = new RNNLanguageModel({ ...w.model, seed: 1 });
    model.train();
    const mirror: MirroredParameters | null = be.hostStorage === false ? mirrorParameters(model) : null;
    const flat: FlatParameters = mirror ?? flattenParameters(model);
    const sgd = new FlatOptimizer(flat, 'sgd', { lr: LR });
    const g = new Generator(1234);
    const ids = (): Tensor => tensor(Int32Array.from({ length: T * B }, () => g.int(w.model.vocabSize)), [T, B], { dtype: 'int32' });
    let state: RecurrentState = model.zeroState(B);
    const t = { step: [] as number[], compute: [] as number[], download: [] as number[], update: [] as number[], upload: [] as number[] };
    for (let s = 0; s < WARMUP + steps; s++) {
      const x = ids(), y = ids();
      const t0 = performance.now();
      const out = model.loss(x, y, state);
      out.loss.backward();
      const loss = out.loss.item(); // waits for the device
      const t1 = performance.now();
      mirror?.download();
      const t2 = performance.now();
      clipGradNorm(flat.grads, CLIP);
      sgd.step();
      sgd.zeroGrad();
      const t3 = performance.now();
      mirror?.upload();
      const t4 = performance.now();
      state = detachState(out.state);
      if (!Number.isFinite(loss)) throw new Error(`bench-tfjs: ${w.name} on ${be.name}: the loss became ${loss}`);
      if (s >= WARMUP) {
        t.step.push(t4 - t0);
        t.compute.push(t1 - t0);
        t.download.push(t2 - t1);
        t.update.push(t3 - t2);
        t.upload.push(t4 - t3);
      }
    }
    return {
      workload: w.name, backend: be.name, tokensPerSec: (T * B) / (median(t.step) / 1000), msStep: median(t.step),
      msCompute: median(t.compute), msDownload: median(t.download), msUpdate: median(t.update), msUpload: median(t.upload),
    };
  } finally {
    setBackend(previous);
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const be = await createTfjsBackend({ runtime: o.runtime });
  const devices = process.env.CUDA_VISIBLE_DEVICES;
  console.log(`bench:tfjs: runtime ${o.runtime} (TF.js backend ${be.tfjs.getBackend()})${o.runtime === 'tfjs-node-gpu' ? `, CUDA_VISIBLE_DEVICES=${devices ?? '(unset: all GPUs visible, TensorFlow uses the first)'}` : ''}, ` +
    `${WARMUP} warm-up + ${o.steps} measured steps, load average ${loadavg()[0].toFixed(2)}`);
  const rows: Row[] = [];
  for (const w of o.workloads) {
    rows.push(measure(w, be, o.steps));
    if (o.baseline) rows.push(measure(w, backend('wasm'), o.steps));
  }
  const header = ['workload', 'backend', 'tokens/s', 'ms step', 'ms compute', 'ms download', 'ms update', 'ms upload'];
  const cells = rows.map((r) => [r.workload, r.backend, r.tokensPerSec.toFixed(0), ...[r.msStep, r.msCompute, r.msDownload, r.msUpdate, r.msUpload].map((v) => v.toFixed(1))]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]): string => c.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const c of cells) console.log(line(c));
  if (o.baseline) {
    for (const w of o.workloads) {
      const [a, b] = rows.filter((r) => r.workload === w.name);
      console.log(`${w.name}: ${o.runtime} ÷ ${b.backend} = ${(a.tokensPerSec / b.tokensPerSec).toFixed(2)}x`);
    }
  }
  console.log('ms columns: medians of each part (compute ends with the loss read back; download/upload: the gradients and values between the device and the flat host buffers).');
  if (o.json) {
    writeFileSync(o.json, JSON.stringify(rows.map((r) => ({ ...r, runtime: o.runtime })), null, 2) + '\n');
    console.log(`wrote ${o.json}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
