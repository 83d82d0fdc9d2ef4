import type { Backend } from '../backend.js';
import { ReferenceBackend } from './reference.js';

/*
 * The current backend for new tensors. The default is the WebAssembly SIMD backend where the runtime
 * supports SIMD (set up by ./wasm.ts when it loads), otherwise the reference backend.
 */
const registry = new Map<string, () => Backend>();
const infos = new Map<string, BackendInfo>();
let current: Backend | null = null;

/**
 * What a caller may need to know of a backend before creating it (creating a device backend can claim the
 * device): `hostStorage` as Backend.hostStorage (absent: true).
 */
export interface BackendInfo {
  readonly hostStorage?: boolean;
}

export function registerBackend(name: string, factory: () => Backend, info: BackendInfo = {}): void {
  registry.set(name, factory);
  infos.set(name, info);
}

/** The info a backend was registered with, without creating it. */
export function backendInfo(name: string): BackendInfo {
  const info = infos.get(name);
  if (!info) throw unknownBackend(name);
  return info;
}

function unknownBackend(name: string): Error {
  return new Error(`backend: unknown backend '${name}'; known: ${backendNames().join(', ')}`);
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
    if (!factory) throw unknownBackend(name);
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
