/*
 * Finding the TF.js runtime the user installed. Every runtime is an optional peer dependency: nothing is
 * loaded until a backend of that runtime is asked for, and a missing one is an error that says what to
 * install.
 *
 * The packages are loaded with require(): TF.js publishes CommonJS for Node (its packages have no
 * "exports" map, so import() would load the same CommonJS files), and require() lets the core's registry,
 * whose factories are synchronous, create a backend on first use. Only the wasm runtime initialises
 * asynchronously (it compiles its WebAssembly module): prepareRuntime('tfjs-wasm') does that once per thread.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type * as tfc from '@tensorflow/tfjs-core';
import { claimNativeRuntime, releaseNativeRuntime } from './claim.js';

export type Tf = typeof tfc;

export const TFJS_RUNTIMES = ['tfjs-node-gpu', 'tfjs-node', 'tfjs-wasm', 'tfjs-cpu'] as const;
export type TfjsRuntime = (typeof TFJS_RUNTIMES)[number];

/** What each runtime needs installed, and the TF.js backend name it registers. */
const RUNTIMES: Record<TfjsRuntime, { packages: string[]; tfBackend: string; note: string }> = {
  'tfjs-node-gpu': {
    packages: ['@tensorflow/tfjs-node-gpu'],
    tfBackend: 'tensorflow',
    note: 'its install downloads libtensorflow with CUDA support (needs CUDA 11.2 and cuDNN 8); offline: see docs/backend-tfjs.md',
  },
  'tfjs-node': {
    packages: ['@tensorflow/tfjs-node'],
    tfBackend: 'tensorflow',
    note: 'its install downloads libtensorflow; offline: see docs/backend-tfjs.md',
  },
  'tfjs-wasm': {
    packages: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm'],
    tfBackend: 'wasm',
    note: 'plain registry packages, nothing downloaded at install',
  },
  'tfjs-cpu': {
    packages: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu'],
    tfBackend: 'cpu',
    note: 'plain registry packages, nothing downloaded at install',
  },
};

export interface LoadedRuntime {
  readonly runtime: TfjsRuntime;
  /** The TF.js API (the runtime package itself for the native runtimes, which re-export it). */
  readonly tf: Tf;
  /** The TF.js backend the kernels run on: 'tensorflow', 'wasm' or 'cpu'. */
  readonly tfBackend: string;
}

const require = createRequire(import.meta.url);
const loaded = new Map<TfjsRuntime, LoadedRuntime>();
const preparing = new Map<TfjsRuntime, Promise<LoadedRuntime>>();

export function checkRuntime(runtime: unknown, where: string): TfjsRuntime {
  if (!TFJS_RUNTIMES.includes(runtime as TfjsRuntime)) {
    throw new Error(`${where} must be one of ${TFJS_RUNTIMES.map((r) => `'${r}'`).join(', ')}, got ${JSON.stringify(runtime)}`);
  }
  return runtime as TfjsRuntime;
}

function requireRuntimePackage(runtime: TfjsRuntime, name: string): unknown {
  try {
    return require(name);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const { packages, note } = RUNTIMES[runtime];
    if (code !== 'MODULE_NOT_FOUND' || !String((e as Error).message).includes(`'${name}'`)) {
      if (runtime !== 'tfjs-node' && runtime !== 'tfjs-node-gpu') throw e;
      // Installed, but its native part is missing or broken: most often its install script never ran.
      throw new Error(
        `backend-tfjs: runtime '${runtime}': ${name} is installed but did not load: ${(e as Error).message}\n` +
        'Its install script downloads libtensorflow and builds the binding; package managers that skip dependency scripts ' +
        `(pnpm 10 and later) must be allowed to run it (${note})`,
      );
    }
    throw new Error(
      `backend-tfjs: runtime '${runtime}' needs the package${packages.length > 1 ? 's' : ''} ${packages.join(' and ')}; ` +
      `install ${packages.length > 1 ? 'them' : 'it'} with \`npm install ${packages.map((p) => `${p}@^4.22.0`).join(' ')}\` ` +
      `(or pnpm add) next to @loom/backend-tfjs (${note})`,
    );
  }
}

/**
 * Loads a runtime synchronously (the native runtimes and tfjs-cpu); tfjs-wasm must have been prepared in
 * this thread first. The native runtimes are claimed for this thread before their binding loads (claim.ts).
 */
export function loadRuntime(runtime: TfjsRuntime): LoadedRuntime {
  const done = loaded.get(runtime);
  if (done) return done;
  if (runtime === 'tfjs-wasm') {
    throw new Error(
      "backend-tfjs: runtime 'tfjs-wasm' initialises asynchronously (it compiles WebAssembly): " +
      "`await createTfjsBackend({ runtime: 'tfjs-wasm' })` or `await prepareBackend('tfjs-wasm')` (from '@loom/backend-tfjs/register') " +
      'in this thread before choosing the backend; the coordinator does this in every thread',
    );
  }
  let tf: Tf;
  if (runtime === 'tfjs-node' || runtime === 'tfjs-node-gpu') {
    claimNativeRuntime(runtime);
    try {
      tf = requireRuntimePackage(runtime, RUNTIMES[runtime].packages[0]) as Tf;
    } catch (e) {
      releaseNativeRuntime();
      throw e;
    }
  } else {
    tf = requireRuntimePackage(runtime, '@tensorflow/tfjs-core') as Tf;
    requireRuntimePackage(runtime, '@tensorflow/tfjs-backend-cpu');
  }
  return activate({ runtime, tf, tfBackend: RUNTIMES[runtime].tfBackend });
}

/** Loads any runtime, initialising tfjs-wasm when needed (once per thread). */
export function prepareRuntime(runtime: TfjsRuntime): Promise<LoadedRuntime> {
  if (runtime !== 'tfjs-wasm') {
    try {
      return Promise.resolve(loadRuntime(runtime));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  const done = loaded.get(runtime);
  if (done) return Promise.resolve(done);
  let p = preparing.get(runtime);
  if (!p) {
    p = prepareWasm().finally(() => preparing.delete(runtime));
    preparing.set(runtime, p);
  }
  return p;
}

async function prepareWasm(): Promise<LoadedRuntime> {
  const tf = requireRuntimePackage('tfjs-wasm', '@tensorflow/tfjs-core') as Tf;
  const wasm = requireRuntimePackage('tfjs-wasm', '@tensorflow/tfjs-backend-wasm') as { setWasmPaths(prefix: string): void };
  // The .wasm files ship in the package's dist/ folder: read them from there (a file path, so offline),
  // never from a URL. In Node TF.js uses the single-threaded SIMD build (its threaded build is browser-only).
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  if (tf.findBackend('wasm') === null) wasm.setWasmPaths(dist);
  const previous = tf.getBackend();
  if (!(await tf.setBackend('wasm'))) throw new Error(`backend-tfjs: runtime 'tfjs-wasm' did not initialise (its WebAssembly module from ${dist} failed to load)`);
  if (previous && previous !== 'wasm') await tf.setBackend(previous);
  return activate({ runtime: 'tfjs-wasm', tf, tfBackend: 'wasm' });
}

function activate(r: LoadedRuntime): LoadedRuntime {
  const { tf } = r;
  // The CPU backend greets Node users once with advice to install tfjs-node; the documentation says
  // that instead, and the greeting would land in the middle of training logs.
  if (r.tfBackend === 'cpu' && tf.findBackend('cpu') !== null) {
    (tf.findBackend('cpu') as unknown as { firstUse?: boolean }).firstUse = false;
  }
  loaded.set(r.runtime, r);
  return r;
}
