/*
 * One native TensorFlow runtime per process, in one thread.
 *
 * tfjs-node and tfjs-node-gpu load libtensorflow through a native binding that has no API to choose a GPU
 * (only CUDA_VISIBLE_DEVICES, read once per process) and is not reliable when several worker threads load
 * it. So the rule: in a process, one thread at a time may use a native runtime; a second thread that asks
 * is refused with this explanation, before it loads the binding. To use several GPUs, run one process per
 * GPU (docs/backend-tfjs.md).
 *
 * The claim is three shared words per process. worker_threads' environment data is copied into every
 * thread started after it is set, and a SharedArrayBuffer is shared, not copied, by that copy: so the
 * thread that first loads this module (the main thread, when it imports @loom/backend-tfjs before starting
 * workers, as the coordinator does with its backendModule) creates the buffer, and every thread started
 * after that sees the same words. Threads started before that, or by a thread that never loaded this
 * module, get their own words: the rule cannot reach them.
 *
 *   words: | owner: Node threadId + 1 (0: free) | owner's OS thread id (Linux, for the liveness check) | runtime code |
 *
 * A thread ended by Worker.terminate() runs no exit handler and cannot release its claim; on Linux the
 * next claimant sees that the owner's OS thread is gone (/proc/self/task/<tid>) and takes the claim over.
 */
import { readlinkSync, existsSync } from 'node:fs';
import { getEnvironmentData, setEnvironmentData, threadId } from 'node:worker_threads';

export type NativeRuntime = 'tfjs-node' | 'tfjs-node-gpu';
const CODES: Record<NativeRuntime, number> = { 'tfjs-node': 1, 'tfjs-node-gpu': 2 };
const NAMES: Record<number, NativeRuntime> = { 1: 'tfjs-node', 2: 'tfjs-node-gpu' };

const KEY = '@loom/backend-tfjs: native runtime claim';
const OWNER = 0, TID = 1, RUNTIME = 2;

function words(): Int32Array {
  let sab = getEnvironmentData(KEY);
  if (!(sab instanceof SharedArrayBuffer)) {
    sab = new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);
    setEnvironmentData(KEY, sab);
  }
  return new Int32Array(sab as SharedArrayBuffer);
}

// Created at load (in the main thread, normally), so that threads started afterwards share it (see above).
words();

/** This thread's OS thread id, or 0 where /proc/thread-self does not exist (not Linux). */
function osThreadId(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || 0;
  } catch {
    return 0;
  }
}

function ownerAlive(tid: number): boolean {
  if (tid === 0 || !existsSync('/proc/self/task')) return true; // cannot tell: assume it lives
  return existsSync(`/proc/self/task/${tid}`);
}

let released: (() => void) | null = null;

/**
 * Claims the process's native runtime for this thread, or throws the rule's explanation. Claiming again
 * from the owning thread for the same runtime is a no-op.
 */
export function claimNativeRuntime(runtime: NativeRuntime): void {
  const w = words();
  const me = threadId + 1;
  for (;;) {
    const owner = Atomics.compareExchange(w, OWNER, 0, me);
    if (owner === 0) {
      Atomics.store(w, TID, osThreadId());
      Atomics.store(w, RUNTIME, CODES[runtime]);
      released = () => {
        Atomics.compareExchange(w, OWNER, me, 0);
      };
      process.once('exit', released);
      return;
    }
    const theirs = NAMES[Atomics.load(w, RUNTIME)] ?? 'a native runtime';
    if (owner === me) {
      if (theirs === runtime) return;
      throw new Error(`backend-tfjs: runtime '${runtime}' refused: this thread already loaded '${theirs}', and the two native runtimes cannot share a process (both load libtensorflow)`);
    }
    const tid = Atomics.load(w, TID);
    if (!ownerAlive(tid)) {
      // The owner ended without releasing (terminated): take its claim over.
      Atomics.compareExchange(w, OWNER, owner, 0);
      continue;
    }
    throw new Error(
      `backend-tfjs: runtime '${runtime}' refused in thread ${threadId}: thread ${owner - 1} of this process already uses '${theirs}'. ` +
      'One native TensorFlow runtime per process, in one thread: tfjs-node-gpu cannot choose a GPU per thread (only ' +
      'CUDA_VISIBLE_DEVICES, per process) and its binding is not reliable when several threads load it. ' +
      'For several GPUs run one process per GPU, e.g. CUDA_VISIBLE_DEVICES=1 node train.js; with the coordinator use ' +
      'workers: 1 in each process (see docs/backend-tfjs.md).',
    );
  }
}

/** Gives the claim back (when this thread holds it). */
export function releaseNativeRuntime(): void {
  if (released) {
    process.off('exit', released);
    released();
    released = null;
  }
}
