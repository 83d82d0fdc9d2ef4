// The slice of the WebAssembly JS API the kernels use, typed here because the workspace compiles
// against lib ES2022 + @types/node 20, neither of which declares the WebAssembly global. Reading it
// through globalThis also lets wasmSimdSupported() answer false, not crash, where it is missing.

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  /** Grows by `pages` 64 KiB pages; detaches the old buffer. */
  grow(pages: number): number;
}

export interface WasmModule { readonly __wasmModule?: never }

export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: Record<string, unknown> };
}

/** The runtime's WebAssembly object, or null when there is none. */
export const wasmApi: WasmApi | null = (globalThis as { WebAssembly?: WasmApi }).WebAssembly ?? null;
