/*
 * Barriers on shared memory. Workers block in Atomics.wait (allowed off the main thread); the coordinator
 * never blocks: it observes workers with Atomics.waitAsync.
 *
 * The barrier is sense-reversing: arrivals count up in control[BARRIER_COUNT]; the last one resets the
 * count and bumps control[BARRIER_GEN], which is what the others wait on. Because the count is reset
 * before the generation moves, nobody can arrive at the next barrier before the count is back to 0.
 * Each arrival also records, in its own word, the generation it arrived at, so a timeout can name the
 * workers that did not come.
 */
import { Ctl, arrivedAt } from './shared-memory.js';

/** Raised in a worker when the coordinator (or another worker) gave up: not this worker's own fault. */
export class AbortedError extends Error {
  override name = 'WorkerAborted';
}

/** Raised in a worker whose barrier wait ran past its timeout; names the workers that did not arrive. */
export class BarrierTimeoutError extends Error {
  override name = 'BarrierTimeout';
  constructor(readonly barrier: string, readonly missing: number[], readonly timeoutMs: number) {
    super(`barrier '${barrier}': worker${missing.length === 1 ? '' : 's'} ${missing.join(', ')} did not arrive within ${timeoutMs} ms`);
  }
}

export class Barrier {
  constructor(
    private readonly control: Int32Array,
    private readonly workers: number,
    private readonly rank: number,
  ) {}

  /**
   * Waits until all workers have arrived. Returns the milliseconds spent waiting. Throws AbortedError when
   * control[ABORT] is set, BarrierTimeoutError after timeoutMs.
   */
  arrive(name: string, timeoutMs: number): number {
    const c = this.control;
    const t0 = performance.now();
    const gen = Atomics.load(c, Ctl.BARRIER_GEN);
    Atomics.store(c, arrivedAt(this.rank), gen + 1);
    if (Atomics.add(c, Ctl.BARRIER_COUNT, 1) === this.workers - 1) {
      Atomics.store(c, Ctl.BARRIER_COUNT, 0);
      Atomics.add(c, Ctl.BARRIER_GEN, 1);
      Atomics.notify(c, Ctl.BARRIER_GEN);
      return performance.now() - t0;
    }
    const deadline = t0 + timeoutMs;
    while (Atomics.load(c, Ctl.BARRIER_GEN) === gen) {
      if (Atomics.load(c, Ctl.ABORT) !== 0) throw new AbortedError(`barrier '${name}': aborted`);
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(c, Ctl.BARRIER_GEN, gen, left) === 'timed-out') {
        if (Atomics.load(c, Ctl.BARRIER_GEN) !== gen) break;
        const missing: number[] = [];
        for (let r = 0; r < this.workers; r++) if (Atomics.load(c, arrivedAt(r)) !== gen + 1) missing.push(r);
        throw new BarrierTimeoutError(name, missing, timeoutMs);
      }
    }
    return performance.now() - t0;
  }
}

/** Sets control[ABORT] and wakes every waiter (barrier, idle loop, the coordinator). */
export function abortAll(control: Int32Array): void {
  Atomics.store(control, Ctl.ABORT, 1);
  for (const w of [Ctl.BARRIER_GEN, Ctl.GO, Ctl.DONE]) Atomics.notify(control, w);
}

/**
 * The coordinator's side: resolves 'ok' once control[index] reaches `target`, 'timeout' after timeoutMs,
 * 'aborted' when control[ABORT] is set. Never blocks the event loop (Atomics.waitAsync).
 */
export async function waitForCount(control: Int32Array, index: number, target: number, timeoutMs: number): Promise<'ok' | 'timeout' | 'aborted'> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (Atomics.load(control, Ctl.ABORT) !== 0) return 'aborted';
    const v = Atomics.load(control, index);
    if (v >= target) return 'ok';
    const left = deadline - performance.now();
    if (left <= 0) return 'timeout';
    const r = waitAsync(control, index, v, left);
    if (r.async) await r.value;
  }
}

/** Atomics.waitAsync (in Node since 16; its types come with lib ES2024, newer than this project's ES2022). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeout: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;
