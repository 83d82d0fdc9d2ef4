import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** Starts a worker thread on a .ts file (tests run under vitest, so the thread needs tsx's loader). */
export function tsWorker(url: URL, workerData: unknown): Worker {
  // On Node 20, tsx's ESM hooks are not installed in worker threads, its CommonJS hook is: the entry is a
  // small .cjs file that require()s the .ts file (as piscina does with its task file).
  const data = { ...(workerData as object), __entry: fileURLToPath(url) };
  return new Worker(new URL('./boot.cjs', import.meta.url), { workerData: data, execArgv: [...process.execArgv, '--import', 'tsx'] });
}

/** The first message of a worker, or its error; bounded in time. */
export function firstMessage<T>(w: Worker, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message from the worker within ${timeoutMs} ms`)), timeoutMs);
    w.once('message', (m) => { clearTimeout(t); resolve(m as T); });
    w.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}
