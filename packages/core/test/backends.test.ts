// The backend suite (backend-suite.ts) on the core's backends. A new core backend is tested by adding its
// name here; a backend package calls backendSuite from its own tests.
import { backend } from '../src/index.js';
import { backendSuite } from './backend-suite.js';

for (const name of ['reference', 'wasm']) backendSuite(name, () => backend(name));
