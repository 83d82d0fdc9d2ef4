// @loom/core's backend suite, unchanged, on the tfjs-wasm runtime (TF.js's WebAssembly kernels).
import { backendSuite } from '../../core/test/backend-suite.js';
import { createTfjsBackend } from '../src/index.js';

// Offline: the .wasm file is read from the package by file path. Any attempt to fetch it fails the file.
const realFetch = globalThis.fetch;
globalThis.fetch = (() => {
  throw new Error('tfjs-wasm must not fetch its .wasm file');
}) as typeof fetch;
const wasm = await createTfjsBackend({ runtime: 'tfjs-wasm' }).finally(() => (globalThis.fetch = realFetch));

backendSuite('tfjs-wasm', () => wasm);
