/*
 * Child process for checkpoint-atomic.test.ts: starts replacing the checkpoint at argv[2] with a large
 * one, reports on stdout when half of it is on disk, then waits to be killed (SIGKILL) mid-write, as a
 * crash or an OOM kill would do it. Exits by itself after 30 s so a broken test cannot leave it running.
 */
import { encodeCheckpoint } from '../src/checkpoint/format.js';
import { writeFileAtomicSync } from '../src/checkpoint/atomic.js';

const path = process.argv[2];
const data = new Float32Array(6_000_000).fill(2); // 24 MB: several write slices
const chunks = encodeCheckpoint({ step: 2, config: null, params: { w: { shape: [data.length], dtype: 'float32', data } } }, 'child');
writeFileAtomicSync(path, chunks, {
  onProgress(written, total) {
    if (written >= total / 2) {
      process.stdout.write(`half ${written} ${total}\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30_000); // block here until killed
      process.exit(3);
    }
  },
});
process.exit(4); // not reached when the parent kills in time
