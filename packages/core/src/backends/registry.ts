import type { Backend } from '../backend.js';
import { ReferenceBackend } from './reference.js';

/*
 * The current backend for new tensors. The default is the WebAssembly SIMD backend where the runtime
 * supports SIMD (set up by ./wasm.ts when it loads), otherwise the reference backend.
 */
const registry = new Map<string, () => Backend>();
let current: Backend | null = null;

export function registerBackend(name: string, factory: () => Backend): void {
  registry.set(name, factory);
}

export function backendNames(): string[] {
  return [...registry.keys()];
}

registerBackend('reference', () => new ReferenceBackend());

const instances = new Map<string, Backend>();

/** Returns the named backend (created once per thread). */
export function backend(name: string): Backend {
  let b = instances.get(name);
  if (!b) {
    const factory = registry.get(name);
    if (!factory) throw new Error(`backend: unknown backend '${name}'; known: ${backendNames().join(', ')}`);
    b = factory();
    instances.set(name, b);
  }
  return b;
}

export function setBackend(b: Backend | string): Backend {
  current = typeof b === 'string' ? backend(b) : b;
  return current;
}

let defaultChooser: () => Backend = () => backend('reference');
export function setDefaultBackendChooser(choose: () => Backend): void {
  defaultChooser = choose;
}

export function getBackend(): Backend {
  if (!current) current = defaultChooser();
  return current;
}
