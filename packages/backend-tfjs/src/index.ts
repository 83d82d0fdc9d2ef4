/**
 * @loom/backend-tfjs: an optional @loom/core backend on TensorFlow.js tensors. Pick a runtime by name:
 *   'tfjs-node-gpu'  CUDA through libtensorflow (@tensorflow/tfjs-node-gpu; one thread per process may use it)
 *   'tfjs-node'      libtensorflow on the CPU (@tensorflow/tfjs-node; same rule)
 *   'tfjs-wasm'      TF.js's WebAssembly kernels (@tensorflow/tfjs-core + @tensorflow/tfjs-backend-wasm)
 *   'tfjs-cpu'       TF.js's plain JavaScript kernels (@tensorflow/tfjs-core + @tensorflow/tfjs-backend-cpu)
 * The runtime packages are optional peer dependencies: install the one you use (docs/backend-tfjs.md).
 *
 *   import { createTfjsBackend } from '@loom/backend-tfjs';
 *   setBackend(await createTfjsBackend({ runtime: 'tfjs-cpu' }));
 *
 * or by name through @loom/core's registry: `import '@loom/backend-tfjs/register'`, then setBackend('tfjs-cpu')
 * (the coordinator: `backendModule: '@loom/backend-tfjs/register', backend: 'tfjs-cpu'`).
 */
import { registerBackend } from '@loom/core';
import { TfjsBackend } from './backend.js';
import { TFJS_RUNTIMES, checkRuntime, loadRuntime, prepareRuntime, type TfjsRuntime } from './runtime.js';

export { TfjsBackend } from './backend.js';
export { TfStorage } from './storage.js';
export { TFJS_RUNTIMES, type TfjsRuntime } from './runtime.js';

export interface TfjsBackendOptions {
  /** Which TF.js runtime runs the kernels. */
  runtime: TfjsRuntime;
}

const instances = new Map<TfjsRuntime, TfjsBackend>();

/**
 * The backend of a runtime (one per runtime per thread), loading the runtime on first use; tfjs-wasm is
 * initialised here. A missing runtime package is an error that names what to install.
 */
export async function createTfjsBackend(options: TfjsBackendOptions): Promise<TfjsBackend> {
  if (options === null || typeof options !== 'object') throw new Error(`createTfjsBackend: options must be { runtime }, got ${String(options)}`);
  const runtime = checkRuntime(options.runtime, 'createTfjsBackend: options.runtime');
  await prepareRuntime(runtime);
  return tfjsBackend(runtime);
}

/** The backend of an already loadable runtime, synchronously (tfjs-wasm: after createTfjsBackend or prepareBackend). */
export function tfjsBackend(runtime: TfjsRuntime): TfjsBackend {
  checkRuntime(runtime, 'tfjsBackend: runtime');
  let b = instances.get(runtime);
  if (!b) {
    b = new TfjsBackend(loadRuntime(runtime));
    instances.set(runtime, b);
  }
  return b;
}

/**
 * Registers the four runtimes in @loom/core's registry under their names ('tfjs-cpu', ...), as backends
 * without host storage. Nothing is loaded until one is chosen.
 */
export function registerTfjsBackends(): void {
  for (const r of TFJS_RUNTIMES) registerBackend(r, () => tfjsBackend(r), { hostStorage: false });
}

/**
 * Readies a registered backend for setBackend(name) in this thread: initialises tfjs-wasm's WebAssembly
 * (asynchronous); loads the other runtimes. Names that are not TF.js runtimes are left alone. The
 * coordinator calls this export of a backendModule in every thread before choosing the backend.
 */
export async function prepareBackend(name: string): Promise<void> {
  if ((TFJS_RUNTIMES as readonly string[]).includes(name)) await createTfjsBackend({ runtime: name as TfjsRuntime });
}
