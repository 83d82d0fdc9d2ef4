// The thread's wasm heap: one shared WebAssembly memory in which the storage pool places its large float32
// arrays, and which the wasm backend's GEMM instance uses as its own memory. A product whose operands live
// there reads them where they are and writes C in place: no copy in, no copy out.
//
// Why: the GEMM kernel can only read its own linear memory, so every product copied A and B in and C out.
// In a WikiText-2 step (logits [200, 33278] per worker) those copies were ~9% of a worker's CPU profile,
// most of it the logits going out and their gradient coming back in twice. The activations a step
// allocates are pooled (storage-pool.ts), so they can live in the heap; parameters and gradients (flat
// shared buffers, coordinator) stay where they are and are still copied.
//
// Why shared: growing an ordinary wasm memory detaches its ArrayBuffer, which would invalidate every
// array handed out before. A shared memory grows without detaching: older SharedArrayBuffers keep their
// length and stay valid views of the same bytes. So arrays are carved from it once and kept (the pool
// reuses them step after step); nothing is ever freed.
//
// Layout (bytes):
//   [0, WORKSPACE_BYTES)            the GEMM's workspace: scratch block, packed blocks, pinned operands,
//                                   copies of operands from outside the heap (grown on demand)
//   [WORKSPACE_BYTES, MAX_BYTES)    arrays, bump-allocated; when this zone is full the pool falls back to
//                                   ordinary arrays (correct, only slower)
// Pages that are reserved but never touched take no memory (the OS maps them on first write).

const PAGE = 65536;
/** The kernels compare addresses as signed i32: everything stays under 2 GiB. */
export const HEAP_MAX_PAGES = 32767;
const MAX_BYTES = HEAP_MAX_PAGES * PAGE;
/** The GEMM's zone; a product needing more workspace than this throws (as one needing more than 2 GiB did). */
export const WORKSPACE_BYTES = 1 << 30;
/** Floats of slack after every array: the in-place B path reads up to NR − 1 floats past a row's end. */
const SLACK_FLOATS = 16;

export interface SharedMemory {
  readonly buffer: SharedArrayBuffer;
  /** Grows by `pages` 64 KiB pages; a shared memory's older buffers stay valid. */
  grow(pages: number): number;
}

type MemoryConstructor = new (d: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
const memoryConstructor = (): MemoryConstructor | undefined =>
  (globalThis as unknown as { WebAssembly?: { Memory: MemoryConstructor } }).WebAssembly?.Memory;

export class WasmHeap {
  readonly memory: SharedMemory;
  /** Every SharedArrayBuffer this memory has had (one per growth): an array over any of them is in the heap. */
  private readonly generations = new Set<ArrayBufferLike>();
  private top: number;
  private readonly limit: number;

  /** @param arrayZoneBytes room for arrays above the workspace (tests pass a small one to see the fallback). */
  constructor(arrayZoneBytes = MAX_BYTES - WORKSPACE_BYTES) {
    const Memory = memoryConstructor()!;
    this.memory = new Memory({ initial: 1, maximum: HEAP_MAX_PAGES, shared: true });
    this.generations.add(this.memory.buffer);
    this.top = WORKSPACE_BYTES;
    this.limit = Math.min(MAX_BYTES, WORKSPACE_BYTES + arrayZoneBytes);
  }

  /** Grows the memory to at least `bytes`; returns the current buffer. */
  ensure(bytes: number): SharedArrayBuffer {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      this.memory.grow(Math.ceil((bytes - have) / PAGE));
      this.generations.add(this.memory.buffer);
    }
    return this.memory.buffer;
  }

  /** A zero-filled Float32Array of `length` in the heap (64-byte aligned), or null when the array zone is full. */
  allocFloat32(length: number): Float32Array | null {
    const at = this.top;
    const end = Math.ceil((at + (length + SLACK_FLOATS) * 4) / 64) * 64;
    if (end > this.limit) return null;
    const buffer = this.ensure(end);
    this.top = end;
    return new Float32Array(buffer, at, length);
  }

  /** The byte address of x's first element if x lives in this heap, else -1. */
  addressOf(x: Float32Array): number {
    return this.generations.has(x.buffer) ? x.byteOffset : -1;
  }
}

/** This thread's heap once the first claim was made (null: the runtime cannot make one); undefined before. */
let claimedHeap: WasmHeap | null | undefined;

/** Whether this runtime has shared WebAssembly memories (Node ≥ 16 does; a runtime without them copies). */
function sharedMemorySupported(): boolean {
  try {
    const Memory = memoryConstructor();
    return typeof SharedArrayBuffer === 'function' && Memory !== undefined && new Memory({ initial: 0, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

/**
 * The thread's heap for the one GEMM instance that will run in it (the wasm backend's), or null when it is
 * already claimed or the runtime cannot make one. Claiming it is what turns pooled arrays into heap arrays.
 */
export function claimThreadHeap(): WasmHeap | null {
  if (claimedHeap !== undefined) return null;
  claimedHeap = sharedMemorySupported() ? new WasmHeap() : null;
  return claimedHeap;
}

/** The claimed heap of this thread, if any: where the storage pool puts float32 arrays. */
export function activeHeap(): WasmHeap | null {
  return claimedHeap ?? null;
}
