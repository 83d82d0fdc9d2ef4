/*
 * Recycled host storage for a loop that builds the same graph again and again (a training step).
 *
 * Why: a W1 language-model step allocates about 57 MB of fresh typed arrays (logits, their gradient, the
 * embedding and decoder gradients, the recurrent layers' saved gates). Arrays that large are mmapped by the
 * allocator and unmapped when collected, so every step takes about 14,000 page faults, and with two worker
 * threads in one process each unmap also interrupts the other core (a TLB shootdown). Handing the same
 * arrays out again, step after step, removes the faults; on an idle machine it took W1's one-worker step from 256 to
 * 221 ms and its two-worker weak-scaling efficiency from 0.90 to 0.95 (docs/coordinator.md).
 *
 * The contract, as tf.tidy's: inside `pool.run(fn)`, every host array of at least `minElements` that a
 * kernel allocates is taken from the pool, and when `run` returns all of them go back to it, to be handed
 * out (zero-filled, as any allocation) by the next run. A tensor created inside therefore must not be used
 * after its run ends: copy out what outlives it, as the coordinator's workers copy the carried
 * hidden state. Parameters, their gradients (a leaf's first .grad is allocated outside the pool) and
 * anything allocated outside a run are never touched.
 *
 * Where the wasm backend runs, float32 arrays come from the thread's wasm heap (kernels/wasm/heap.ts), where
 * its GEMM reads and writes them without copying. The heap never frees: a pool's arrays are kept for the
 * thread's lifetime, so make one pool per loop (as each coordinator worker does), not one per step.
 */
import { arrayType, type DType, type TypedArray } from './dtype.js';
import { activeHeap } from './kernels/wasm/heap.js';

/** The pool that allocArray draws from now (one per thread: every worker thread has its own module state). */
let active: StoragePool | null = null;

export class StoragePool {
  /** Arrays free for the next run, by dtype and length. */
  private readonly free = new Map<string, TypedArray[]>();
  /** Arrays handed out during the current run. */
  private taken: TypedArray[] = [];
  /** Counters, for tests and benchmarks. */
  readonly stats = { reused: 0, allocated: 0 };

  /** @param minElements arrays shorter than this are left to the garbage collector (they are cheap). */
  constructor(readonly minElements = 16_384) {}

  /** Runs fn with this pool active; everything it took comes back when it returns or throws. */
  run<T>(fn: () => T): T {
    if (active !== null) throw new Error('StoragePool.run: a pool is already active on this thread (runs do not nest)');
    active = this;
    try {
      return fn();
    } finally {
      active = null;
      for (const a of this.taken) {
        const key = keyOf(a);
        const list = this.free.get(key);
        if (list) list.push(a);
        else this.free.set(key, [a]);
      }
      this.taken = [];
    }
  }

  /** Forgets every free array (they become garbage). */
  clear(): void {
    this.free.clear();
  }

  take(dtype: DType, size: number): TypedArray {
    const list = this.free.get(`${dtype}:${size}`);
    let a = list?.pop();
    if (a) {
      a.fill(0);
      this.stats.reused++;
    } else {
      a = (dtype === 'float32' ? activeHeap()?.allocFloat32(size) : null) ?? new arrayType[dtype](size);
      this.stats.allocated++;
    }
    this.taken.push(a);
    return a;
  }
}

function keyOf(a: TypedArray): string {
  const dtype: DType = a instanceof Float32Array ? 'float32' : a instanceof Float64Array ? 'float64' : 'int32';
  return `${dtype}:${a.length}`;
}

/** Runs fn with no pool active: for storage that outlives the run (a leaf's first .grad). */
export function outsidePool<T>(fn: () => T): T {
  const saved = active;
  active = null;
  try {
    return fn();
  } finally {
    active = saved;
  }
}

/** The pool allocArray should draw an array of `size` elements from, if any. */
export function activePool(size: number): StoragePool | null {
  return active !== null && size >= active.minElements ? active : null;
}
