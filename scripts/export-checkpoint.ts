// A checkpoint's parameters (and, for a pnpm train checkpoint, the carried hidden state) as raw float32
// files with a JSON index, for reading from other frameworks: reference/lm_continue.py loads them into
// PyTorch to check that both continue a run the same way.
//
//   npx tsx scripts/export-checkpoint.ts --checkpoint=runs/NAME/checkpoints/ckpt-00005000.loom --out=DIR
//
// DIR/index.json: { step, epoch, window, params: { name: { file, shape } }, hidden: [{ layer state name:
// { file, shape } }] per lane group in lane order }; every file is little-endian float32, row-major.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpointSync } from '@loom/core';
import { parseOptions, runMain } from './lib/cli.js';
import { ConfigError } from './lib/config.js';

interface PlainTensor { tensor: true; shape: number[]; data: Float32Array | Float64Array | Int32Array }

function writeF32(file: string, data: ArrayLike<number>): void {
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  fs.writeFileSync(file, Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength));
}

runMain(async () => {
  const o = parseOptions('export-checkpoint', {
    checkpoint: '', // a .loom file
    out: '', // the folder to write (created)
  }, process.argv.slice(2));
  if (!o.checkpoint || !o.out) throw new ConfigError('export-checkpoint: --checkpoint=FILE and --out=DIR are required');
  const ckpt = loadCheckpointSync(o.checkpoint);
  fs.mkdirSync(o.out, { recursive: true });
  const params: Record<string, { file: string; shape: number[] }> = {};
  for (const [name, entry] of Object.entries(ckpt.params)) {
    const file = `${name}.f32`;
    writeF32(path.join(o.out, file), entry.data as ArrayLike<number>);
    params[name] = { file, shape: [...entry.shape] };
  }
  // The coordinator keeps one carried state per worker and micro-batch, in lane order (worker 0's lanes first).
  const trainer = (ckpt.extra?.trainer ?? null) as { progress: { epoch: number; window: number }; hidden: (Record<string, PlainTensor> | null)[][] | null } | null;
  const hidden = (trainer?.hidden ?? []).flat().map((state, g) => {
    if (state === null) return null;
    return Object.fromEntries(Object.entries(state).map(([key, t]) => {
      const file = `hidden-${g}-${key}.f32`;
      writeF32(path.join(o.out, file), t.data);
      return [key, { file, shape: t.shape }];
    }));
  });
  const index = { checkpoint: path.resolve(o.checkpoint), step: ckpt.step, epoch: trainer?.progress.epoch ?? null, window: trainer?.progress.window ?? null, params, hidden };
  fs.writeFileSync(path.join(o.out, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  console.log(`wrote ${Object.keys(params).length} parameters and ${hidden.length} carried states of step ${ckpt.step} to ${o.out}`);
});
