// @loom/core's backend suite, unchanged, on the tfjs-wasm runtime (TF.js's WebAssembly kernels, loaded
// from the package's own .wasm file: no network).
import { backendSuite } from '../../core/test/backend-suite.js';
import { createTfjsBackend } from '../src/index.js';

const wasm = await createTfjsBackend({ runtime: 'tfjs-wasm' });
backendSuite('tfjs-wasm', () => wasm);
