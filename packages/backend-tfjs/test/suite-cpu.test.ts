// @loom/core's backend suite, unchanged, on the tfjs-cpu runtime (TF.js's JavaScript kernels).
import { backendSuite } from '../../core/test/backend-suite.js';
import { tfjsBackend } from '../src/index.js';

backendSuite('tfjs-cpu', () => tfjsBackend('tfjs-cpu'));
