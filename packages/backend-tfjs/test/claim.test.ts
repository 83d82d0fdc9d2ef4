// One native TensorFlow runtime per process, in one thread (src/claim.ts): a second worker thread asking
// for tfjs-node-gpu is refused with the rule's explanation, before the binding would load. The runtime
// packages are not installed here, so what is checked is the claim itself and that it comes first.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { afterAll, expect, it } from 'vitest';
import { claimNativeRuntime, releaseNativeRuntime } from '../src/claim.js';

const tsx = createRequire(import.meta.url).resolve('tsx/cjs');
const src = (file: string): string => new URL(`../src/${file}`, import.meta.url).pathname;

/** A thread that claims or creates backends on request and answers with 'ok' or the error's message. */
class Thread {
  readonly worker: Worker;
  private readonly replies: string[] = [];
  private waiting: ((m: string) => void) | null = null;
  readonly exited: Promise<number>;

  constructor() {
    this.worker = new Worker(`
      require(${JSON.stringify(tsx)});
      const { claimNativeRuntime } = require(${JSON.stringify(src('claim.ts'))});
      const { createTfjsBackend } = require(${JSON.stringify(src('index.ts'))});
      const { parentPort } = require('node:worker_threads');
      parentPort.on('message', async ([cmd, runtime]) => {
        if (cmd === 'exit') return parentPort.close();
        try {
          if (cmd === 'claim') claimNativeRuntime(runtime);
          else await createTfjsBackend({ runtime });
          parentPort.postMessage('ok');
        } catch (e) {
          parentPort.postMessage(e.message);
        }
      });
    `, { eval: true });
    this.worker.on('message', (m: string) => {
      if (this.waiting) {
        this.waiting(m);
        this.waiting = null;
      } else this.replies.push(m);
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
  }

  ask(cmd: 'claim' | 'create', runtime: string): Promise<string> {
    this.worker.postMessage([cmd, runtime]);
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async exit(): Promise<void> {
    this.worker.postMessage(['exit']);
    await this.exited;
  }
}

const threads: Thread[] = [];
afterAll(async () => {
  await Promise.all(threads.map((t) => t.worker.terminate()));
});
const thread = (): Thread => {
  const t = new Thread();
  threads.push(t);
  return t;
};

it('a second thread asking for tfjs-node-gpu is refused with the rule, before anything loads; the first may ask again', async () => {
  const a = thread(), b = thread();
  expect(await a.ask('claim', 'tfjs-node-gpu')).toBe('ok');
  expect(await a.ask('claim', 'tfjs-node-gpu')).toBe('ok');

  const refused = await b.ask('claim', 'tfjs-node-gpu');
  expect(refused).toMatch(/^backend-tfjs: runtime 'tfjs-node-gpu' refused in thread \d+: thread \d+ of this process already uses 'tfjs-node-gpu'\. /);
  expect(refused).toContain('One native TensorFlow runtime per process, in one thread');
  expect(refused).toContain('CUDA_VISIBLE_DEVICES');
  expect(refused).toContain('one process per GPU');
  // Through the public API the refusal comes first (the package is not installed here: without the claim
  // check this would be the missing-package error).
  expect(await b.ask('create', 'tfjs-node-gpu')).toBe(refused);
  // The CPU native runtime too: both load libtensorflow.
  expect(await b.ask('claim', 'tfjs-node')).toMatch(/runtime 'tfjs-node' refused in thread \d+: thread \d+ of this process already uses 'tfjs-node-gpu'/);
  expect(() => claimNativeRuntime('tfjs-node-gpu')).toThrow(/refused in thread 0:/);
  // The owner cannot load the other native runtime either.
  expect(await a.ask('claim', 'tfjs-node')).toBe("backend-tfjs: runtime 'tfjs-node' refused: this thread already loaded 'tfjs-node-gpu', and the two native runtimes cannot share a process (both load libtensorflow)");

  // When the owner ends, the claim is free again.
  await a.exit();
  expect(await b.ask('claim', 'tfjs-node-gpu')).toBe('ok');
  await b.exit();
});

it.runIf(process.platform === 'linux')('a claim of a terminated thread (no exit handler ran) is taken over', async () => {
  const a = thread(), b = thread();
  expect(await a.ask('claim', 'tfjs-node-gpu')).toBe('ok');
  expect(await b.ask('claim', 'tfjs-node-gpu')).toMatch(/refused/);
  await a.worker.terminate();
  expect(await b.ask('claim', 'tfjs-node-gpu')).toBe('ok');
  await b.exit();
});

it('the main thread can hold and release the claim', async () => {
  claimNativeRuntime('tfjs-node');
  const b = thread();
  expect(await b.ask('claim', 'tfjs-node-gpu')).toMatch(/refused in thread \d+: thread 0 of this process already uses 'tfjs-node'/);
  releaseNativeRuntime();
  expect(await b.ask('claim', 'tfjs-node-gpu')).toBe('ok');
  await b.exit();
});
