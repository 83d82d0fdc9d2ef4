/**
 * Import for its effect: registers 'tfjs-node-gpu', 'tfjs-node', 'tfjs-wasm' and 'tfjs-cpu' in
 * @loom/core's backend registry. `prepareBackend(name)` readies one in this thread (needed for tfjs-wasm,
 * which compiles WebAssembly); the coordinator calls it in every thread when this is its backendModule.
 */
import { registerTfjsBackends } from './index.js';

export { prepareBackend } from './index.js';

registerTfjsBackends();
