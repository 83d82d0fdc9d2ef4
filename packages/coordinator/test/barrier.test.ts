import { afterEach, describe, expect, test } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { Barrier, abortAll, waitForCount } from '../src/barrier.js';
import { CHUNK, globalNorm } from '../src/reduce.js';
import { Ctl, SharedViews, allocateShared, numChunks, sliceOf } from '../src/shared-memory.js';
import { START, type BarrierWorkerData } from './fixtures/barrier-protocol.js';
import { firstMessage, tsWorker } from './helpers/threads.js';

const WORKER = new URL('./fixtures/barrier-worker.ts', import.meta.url);
type Reply = { ok: boolean; name?: string; message?: string; missing?: number[] };

let started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.map((w) => w.terminate()));
  started = [];
});

/** Starts the workers, lets them go once all are running, and returns their replies. */
async function run(data: Omit<BarrierWorkerData, 'rank'>, ranks: number[]): Promise<Reply[]> {
  const workers = ranks.map((rank) => tsWorker(WORKER, { ...data, rank }));
  started.push(...workers);
  await Promise.all(workers.map((w) => firstMessage<string>(w)));
  const replies = workers.map((w) => firstMessage<Reply>(w));
  const control = new Int32Array(data.buffers.control);
  Atomics.store(control, START, 1);
  Atomics.notify(control, START);
  return Promise.all(replies);
}

describe('Barrier', () => {
  test.each([1, 2, 4])('%i workers meet 300 times, each time after all of them wrote', async (N) => {
    const buffers = allocateShared({ length: 64, workers: N, stateBuffers: 0 });
    const replies = await run({ mode: 'rounds', buffers, rounds: 300 }, [...Array(N).keys()]);
    expect(replies).toEqual(Array(N).fill({ ok: true }));
    const v = new SharedViews(buffers);
    expect(v.control[Ctl.BARRIER_GEN]).toBe(600);
    expect(v.control[Ctl.BARRIER_COUNT]).toBe(0);
  });

  test('a wait past its timeout names the workers that did not arrive', async () => {
    const buffers = allocateShared({ length: 64, workers: 4, stateBuffers: 0 });
    const [a, b] = await run({ mode: 'wait', buffers, timeoutMs: 300 }, [0, 2]);
    for (const r of [a, b]) {
      expect(r).toMatchObject({ ok: false, name: 'BarrierTimeout', missing: [1, 3] });
      expect(r.message).toBe("barrier 'lonely': workers 1, 3 did not arrive within 300 ms");
    }
  });

  test('abortAll wakes a waiting worker long before its timeout', async () => {
    const buffers = allocateShared({ length: 64, workers: 2, stateBuffers: 0 });
    const replies = run({ mode: 'wait', buffers, timeoutMs: 60_000 }, [0]);
    setTimeout(() => abortAll(new Int32Array(buffers.control)), 1500);
    expect((await replies)[0]).toMatchObject({ ok: false, name: 'WorkerAborted' });
  });

  test('one worker passes its barrier at once', () => {
    const buffers = allocateShared({ length: 64, workers: 1, stateBuffers: 0 });
    const c = new Int32Array(buffers.control);
    const b = new Barrier(c, 1, 0);
    for (let i = 0; i < 3; i++) b.arrive('alone', 0);
    expect(c[Ctl.BARRIER_GEN]).toBe(3);
  });
});

describe('waitForCount (the coordinator side, never blocking)', () => {
  test('resolves ok when the count is reached, timeout when it is not, aborted after abortAll', async () => {
    const buffers = allocateShared({ length: 64, workers: 2, stateBuffers: 0 });
    const c = new Int32Array(buffers.control);
    const pending = waitForCount(c, Ctl.DONE, 2, 5000);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1); // the event loop keeps running while we wait
    setTimeout(() => { Atomics.add(c, Ctl.DONE, 1); }, 20);
    setTimeout(() => { Atomics.add(c, Ctl.DONE, 1); Atomics.notify(c, Ctl.DONE); }, 60);
    expect(await pending).toBe('ok');
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
    expect(await waitForCount(c, Ctl.DONE, 3, 50)).toBe('timeout');
    const aborted = waitForCount(c, Ctl.DONE, 3, 5000);
    abortAll(c);
    expect(await aborted).toBe('aborted');
  });
});

describe('reduce-scatter', () => {
  test('slices are whole chunks, in order, covering the layout once', () => {
    for (const L of [1, CHUNK - 1, CHUNK, 3 * CHUNK + 5, 10 * CHUNK]) {
      for (const N of [1, 2, 3, 4, 7]) {
        let next = 0;
        for (let r = 0; r < N; r++) {
          const s = sliceOf(r, N, L);
          expect(s.lo).toBe(next);
          expect(s.lo % CHUNK === 0 || s.lo === L).toBe(true);
          next = s.hi;
        }
        expect(next).toBe(L);
        expect(sliceOf(N - 1, N, L).chunkHi).toBe(numChunks(L));
      }
    }
  });

  test.each([1, 2, 3, 4])('%i workers: the reduced gradient is the rank-ordered float32 sum, bit for bit, whatever the timing', async (N) => {
    const L = 3 * CHUNK + 123;
    const scale = N === 1 ? 1 : 1 / N;
    // The reference: one thread adding the workers' gradients in rank order into float32, then scaling.
    let s = 12345;
    const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 10;
    const inputs = Array.from({ length: N }, () => Float32Array.from({ length: L }, rnd));
    const expected = Float32Array.from(inputs[0]);
    for (let w = 1; w < N; w++) for (let i = 0; i < L; i++) expected[i] += inputs[w][i];
    if (scale !== 1) for (let i = 0; i < L; i++) expected[i] *= scale;
    const expectedSums = new Float64Array(numChunks(L));
    // Each chunk's sum of squares in four interleaved partial sums (@loom/core's sumOfSquares, as reduce.ts uses it).
    for (let c = 0; c < expectedSums.length; c++) {
      const part = [0, 0, 0, 0];
      const lo = c * CHUNK, hi = Math.min(lo + CHUNK, L);
      const whole = lo + Math.floor((hi - lo) / 4) * 4;
      for (let i = lo; i < hi; i++) part[i < whole ? (i - lo) % 4 : 0] += expected[i] * expected[i];
      expectedSums[c] = (part[0] + part[1]) + (part[2] + part[3]);
    }

    const buffers = allocateShared({ length: L, workers: N, stateBuffers: 0 });
    const inputsBuf = new SharedArrayBuffer(N * L * 4);
    inputs.forEach((g, r) => new Float32Array(inputsBuf, r * L * 4, L).set(g));
    const expectedBuf = new SharedArrayBuffer(L * 4);
    new Float32Array(expectedBuf).set(expected);
    // 20 repeats with random delays: each worker checks its slice bit for bit every time.
    const replies = await run({ mode: 'reduce', buffers, scale, repeats: 20, inputs: inputsBuf, expected: expectedBuf, seed: N }, [...Array(N).keys()]);
    expect(replies).toEqual(Array(N).fill({ ok: true }));
    const v = new SharedViews(buffers);
    expect(Array.from(v.chunkSums)).toEqual(Array.from(expectedSums));
    expect(globalNorm(v.chunkSums)).toBe(Math.sqrt(expectedSums.reduce((a, b) => a + b, 0)));
  });
});
