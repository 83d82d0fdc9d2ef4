// The WebAssembly SIMD GEMM: one instance per thread, its own linear memory, operands copied in
// and C copied out on every call (the caller's arrays are ordinary, possibly shared, Float32Arrays),
// except a right operand pinned with pinB, which is packed into that memory once for many calls, and
// operands that already live in its memory: an instance made with the thread's heap (heap.ts, the wasm
// backend's) reads and writes the storage pool's arrays in place.
// See docs/kernels.md for the layout, the blocking and the measured figures.

import v8 from 'node:v8';
import { addBiasRows, checkCounts, checkGemmArgs, checkOperand, type PinnedGemm } from '../gemm-reference.js';
import { SCRATCH_BYTES, buildGemmModule, type GemmModuleExports, type MicroKernelShape } from './kernels.js';
import { FunctionBuilder, ModuleBuilder, v128 } from './assembler.js';
import { wasmApi, type WasmModule } from './runtime.js';
import { HEAP_MAX_PAGES, WORKSPACE_BYTES, type WasmHeap } from './heap.js';

export interface WasmGemm {
  /** true when the FMA (relaxed SIMD) build is in use. */
  readonly relaxed: boolean;
  /**
   * C[m×n] (+)= op(A)·op(B), exactly the contract of gemmReference, float32 only. With a bias (n floats),
   * every row of C then gets bias added, last: bitwise the product followed by a separate broadcast add.
   */
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Float32Array, aOffset: number, lda: number,
    b: Float32Array, bOffset: number, ldb: number,
    c: Float32Array, cOffset: number, ldc: number,
    accumulate: boolean, bias?: Float32Array | null,
  ): void;
  /**
   * Packs op(B) (k×n; B stored n×k when transB) into this instance's memory once and returns a handle whose
   * gemm runs products against it: no copy and no packing of B per call (for the recurrent per-step products,
   * where B is the weight matrix and m the batch). The caller must not change B while it is pinned (the products
   * read the packed copy) and must release the handle; every method of a released handle throws. Several pins
   * may be live at once; their memory is reused once the most recent ones are released.
   */
  pinB(transB: boolean, k: number, n: number, b: Float32Array, bOffset: number, ldb: number): PinnedGemm;
}

/** Kernel build and blocking parameters. Exposed for tuning and benchmarks; the defaults below are measured. */
export interface WasmGemmConfig extends MicroKernelShape {
  /** KC: depth of one packed block (A panel kc·MR and B panel kc·NR floats live in L1 together). */
  kc: number;
  /** MC: rows of A packed at once (MC·KC floats, about 120 KiB, stay in L2). */
  mc: number;
  /** NC: columns of B packed at once (KC·NC floats, 4 MiB, in L3). */
  nc: number;
  /** Products with m ≤ smallM and a non-transposed B read B in place instead of packing it. */
  smallM: number;
}

/** Plain SIMD128: 4×8 tile, mul + add (12 of 15 vector registers). */
export const PLAIN_CONFIG: Readonly<WasmGemmConfig> = { rows: 4, cols: 8, fma: false, kc: 256, mc: 120, nc: 4096, smallM: 32 };
/** Relaxed SIMD: 3×12 tile, relaxed_madd (13 of 15 vector registers). */
export const RELAXED_CONFIG: Readonly<WasmGemmConfig> = { rows: 3, cols: 12, fma: true, kc: 256, mc: 120, nc: 4092, smallM: 32 };

// Tiny probe modules: (func (param v128 v128 v128) (result v128) ...).
function probeModule(relaxed: boolean): Uint8Array {
  const f = new FunctionBuilder([v128, v128, v128], [v128]);
  f.get(0).get(1).get(2);
  if (relaxed) f.f32x4RelaxedMadd();
  else f.f32x4Mul().f32x4Add();
  const mod = new ModuleBuilder();
  mod.addFunction('probe', f);
  return mod.encode();
}

let simdSupported: boolean | undefined;
/** Whether this runtime validates SIMD128 modules. */
export function wasmSimdSupported(): boolean {
  simdSupported ??= wasmApi !== null && wasmApi.validate(probeModule(false));
  return simdSupported;
}

let relaxedSupported: boolean | undefined;
/**
 * Whether relaxed SIMD validates, turning on V8's `--experimental-wasm-relaxed-simd` first if needed.
 * Node 20 ships relaxed SIMD behind that flag, and NODE_OPTIONS refuses it, but setting it at run
 * time before compiling works (in this thread and in workers started afterwards). Node ≥ 22 has it on.
 */
export function relaxedSimdSupported(): boolean {
  if (relaxedSupported === undefined) {
    if (!wasmApi || !wasmSimdSupported()) return (relaxedSupported = false);
    const probe = probeModule(true);
    if (!wasmApi.validate(probe)) {
      try {
        v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      } catch {
        // Not V8, or the flag is unknown: stay on plain SIMD.
      }
    }
    relaxedSupported = wasmApi.validate(probe);
  }
  return relaxedSupported;
}

// Compiled once per thread, tile shape and memory kind; each createWasmGemm call gets its own instance
// (and memory, or the heap it was given).
const moduleCache = new Map<string, WasmModule>();
function compiledModule(shape: MicroKernelShape, heap: boolean): WasmModule {
  if (!wasmApi) throw new Error('WasmGemm: this runtime has no WebAssembly');
  const key = `${shape.rows}x${shape.cols}${shape.fma ? 'fma' : ''}${heap ? 'heap' : ''}`;
  let mod = moduleCache.get(key);
  if (mod === undefined) {
    mod = new wasmApi.Module(buildGemmModule(shape, heap ? HEAP_MAX_PAGES : 0));
    moduleCache.set(key, mod);
  }
  return mod;
}

/**
 * Compiles and instantiates the kernels (synchronously). Returns null when the runtime lacks SIMD.
 * options.relaxed: 'auto' (default) uses relaxed SIMD when it validates, enabling V8's flag first;
 * true requires it (throws when unavailable); false uses plain SIMD128.
 * options.heap: run in this heap (heap.ts) instead of a memory of its own, reading and writing the arrays
 * that live there in place. One instance per heap: they would share its workspace.
 */
export function createWasmGemm(options: { relaxed?: boolean | 'auto'; heap?: WasmHeap | null } = {}): WasmGemm | null {
  const relaxed = options.relaxed ?? 'auto';
  if (relaxed !== 'auto' && typeof relaxed !== 'boolean') {
    throw new TypeError(`createWasmGemm: options.relaxed must be true, false or 'auto', got ${String(relaxed)}`);
  }
  if (!wasmSimdSupported()) return null;
  const heap = options.heap ?? null;
  if (relaxed === false) return createWasmGemmWithConfig(PLAIN_CONFIG, heap);
  if (relaxedSimdSupported()) return createWasmGemmWithConfig(RELAXED_CONFIG, heap);
  if (relaxed === true) throw new Error('createWasmGemm: options.relaxed is true but this runtime does not validate relaxed SIMD (f32x4.relaxed_madd)');
  return createWasmGemmWithConfig(PLAIN_CONFIG, heap);
}

/** Builds a kernel for explicit parameters (tuning, benchmarks, tests). Throws if the runtime cannot compile it. */
export function createWasmGemmWithConfig(config: WasmGemmConfig, heap: WasmHeap | null = null): WasmGemm {
  for (const key of ['rows', 'cols', 'kc', 'mc', 'nc'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) throw new RangeError(`createWasmGemmWithConfig: config.${key} must be a positive integer, got ${config[key]}`);
  }
  if (!Number.isInteger(config.smallM) || config.smallM < 0) throw new RangeError(`createWasmGemmWithConfig: config.smallM must be a non-negative integer, got ${config.smallM}`);
  if (config.fma && !relaxedSimdSupported()) throw new Error('createWasmGemmWithConfig: config.fma needs relaxed SIMD, which this runtime does not validate');
  const module = compiledModule(config, heap !== null); // throws when there is no WebAssembly
  const instance = new wasmApi!.Instance(module, heap ? { env: { memory: heap.memory } } : {});
  return new WasmGemmKernel(config, instance.exports as unknown as GemmModuleExports, heap);
}

const roundUp = (x: number, to: number): number => Math.ceil(x / to) * to;
/** Regions start on 64-byte (cache line) boundaries; addresses are in bytes. */
const align64 = (bytes: number): number => roundUp(bytes, 64);
const MAX_BYTES = 2 ** 31 - 65536; // the kernels compare addresses as signed i32

/**
 * How an operand (rows × cols, leading dimension ld) is copied into wasm memory: one contiguous copy
 * keeping ld when the gaps between rows are small, otherwise row by row, compacted to ld = cols.
 */
function copyPlan(rows: number, cols: number, ld: number): { ld: number; floats: number } {
  const span = (rows - 1) * ld + cols;
  const keep = ld === cols || span <= 2 * rows * cols;
  return keep ? { ld, floats: span } : { ld: cols, floats: rows * cols };
}

class WasmGemmKernel implements WasmGemm {
  readonly relaxed: boolean;
  /** A view of the whole memory as floats (refreshed when it grows). */
  private heap: Float32Array;
  private readonly memory: { readonly buffer: ArrayBufferLike; grow(pages: number): number };
  /** The end of the space this kernel may use for itself: the heap's workspace zone, or 2 GiB. */
  private readonly limit: number;

  /**
   * Pinned operands live in [SCRATCH_BYTES, arenaEnd), most recent last; each call's own regions start at
   * arenaEnd. Releasing the most recent pins lowers arenaEnd; a pin released under a live one stays a hole
   * until those above it go too (the recurrent kernels hold one pin at a time).
   */
  private pins: { end: number; live: boolean }[] = [];
  private arenaEnd = SCRATCH_BYTES;

  constructor(private readonly config: WasmGemmConfig, private readonly wasm: GemmModuleExports, private readonly threadHeap: WasmHeap | null) {
    this.relaxed = config.fma;
    this.memory = threadHeap ? threadHeap.memory : wasm.memory;
    this.limit = threadHeap ? WORKSPACE_BYTES : MAX_BYTES;
    this.heap = new Float32Array(this.memory.buffer);
  }

  /** Grows memory to at least `bytes` and refreshes the view (growth detaches an unshared memory's ArrayBuffer). */
  private reserve(bytes: number, fn = 'WasmGemm.gemm'): Float32Array {
    if (bytes > this.limit) throw new RangeError(`${fn}: the operands need ${bytes} bytes of wasm memory, more than the ${this.limit / 2 ** 30} GiB this kernel has for them`);
    if (this.threadHeap) {
      this.threadHeap.ensure(bytes);
    } else {
      const have = this.memory.buffer.byteLength;
      if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / 65536));
    }
    if (this.heap.buffer !== this.memory.buffer) this.heap = new Float32Array(this.memory.buffer);
    return this.heap;
  }

  /** The byte address of x[offset] when x lives in this kernel's memory (the thread heap), else -1. */
  private addressIn(x: Float32Array, offset: number): number {
    const at = this.threadHeap ? this.threadHeap.addressOf(x) : -1;
    return at < 0 ? -1 : at + offset * 4;
  }

  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Float32Array, aOffset: number, lda: number,
    b: Float32Array, bOffset: number, ldb: number,
    c: Float32Array, cOffset: number, ldc: number,
    accumulate: boolean, bias: Float32Array | null = null,
  ): void {
    checkGemmArgs('WasmGemm.gemm', transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc);
    for (const [name, x] of [['a', a], ['b', b], ['c', c]] as const) {
      if (!(x instanceof Float32Array)) throw new TypeError(`WasmGemm.gemm: argument '${name}' must be a Float32Array (float64 products go to gemmReference)`);
    }
    if (bias !== null) checkBias('WasmGemm.gemm', bias, n);
    this.multiply(transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, -1, c, cOffset, ldc, accumulate, bias);
  }

  pinB(transB: boolean, k: number, n: number, b: Float32Array, bOffset: number, ldb: number): PinnedGemm {
    const fn = 'WasmGemm.pinB';
    checkCounts(fn, { k, n, bOffset });
    checkOperand(fn, 'b', 'ldb', b, bOffset, ldb, transB ? n : k, transB ? k : n);
    if (!(b instanceof Float32Array)) throw new TypeError(`${fn}: argument 'b' must be a Float32Array (float64 products go to pinReference)`);
    // op(B) as panels of NR columns, each running the whole depth k (the packed layout with kc = k): block
    // (jc, pc) of a product is then a sub-range of every panel, so one packing serves every blocking.
    const NR = this.config.cols;
    const at = this.arenaEnd;
    const end = align64(at + roundUp(n, NR) * k * 4);
    if (k > 0 && n > 0) {
      // B is copied just above the packed region (where calls put their own operands), then packed.
      const bRows = transB ? n : k, bCols = transB ? k : n;
      const plan = copyPlan(bRows, bCols, ldb);
      const heap = this.reserve(end + plan.floats * 4, fn);
      copyIn(heap, end >> 2, b, bOffset, ldb, bRows, bCols, plan.ld);
      const sbp = transB ? 1 : plan.ld, sbj = transB ? plan.ld : 1;
      this.wasm.packB(end, sbj * 4, sbp * 4, n, k, at);
    }
    const pin = { end, live: true };
    this.pins.push(pin);
    this.arenaEnd = end;
    return new PinnedWasmB(this, pin, at, transB, k, n);
  }

  /** Ends a pin (PinnedWasmB.release; not part of WasmGemm). */
  unpin(pin: { end: number; live: boolean }): void {
    pin.live = false;
    while (this.pins.length > 0 && !this.pins[this.pins.length - 1].live) this.pins.pop();
    this.arenaEnd = this.pins.length > 0 ? this.pins[this.pins.length - 1].end : SCRATCH_BYTES;
  }

  /**
   * The product, arguments checked (gemm, PinnedWasmB.gemm; not part of WasmGemm). B is either the caller's
   * (copied in, then packed or, for a small m, read in place) or, when pinnedAt ≥ 0, already packed at that
   * byte address by pinB (b, bOffset, ldb unused).
   */
  multiply(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Float32Array, aOffset: number, lda: number,
    b: Float32Array | null, bOffset: number, ldb: number, pinnedAt: number,
    c: Float32Array, cOffset: number, ldc: number,
    accumulate: boolean, bias: Float32Array | null = null,
  ): void {
    if (m === 0 || n === 0) return;
    if (k === 0) {
      if (!accumulate) for (let i = 0; i < m; i++) c.fill(0, cOffset + i * ldc, cOffset + i * ldc + n);
      if (bias) addBiasRows(c, cOffset, ldc, m, n, bias);
      return;
    }
    const { rows: MR, cols: NR, kc: KC, mc: MC } = this.config;
    const pinned = pinnedAt >= 0;
    const inPlaceB = !pinned && !transB && m <= this.config.smallM;
    // A pinned B's panels start every NR columns, so its column blocks must too.
    const NC = pinned ? Math.max(NR, this.config.nc - (this.config.nc % NR)) : this.config.nc;

    // Memory layout (bytes): [scratch][pinned Bs][packed A block][packed B block][A copy][B copy + pad][C copy][bias]
    // (a pinned B needs neither the packed B block nor the B copy; an operand in the heap needs no copy).
    const kcMax = Math.min(KC, k);
    const aRows = transA ? k : m, aCols = transA ? m : k;
    const bRows = transB ? n : k, bCols = transB ? k : n;
    const aAt = this.addressIn(a, aOffset);
    const bAt = pinned ? -1 : this.addressIn(b!, bOffset);
    const cAt = this.addressIn(c, cOffset);
    const aPlan = aAt >= 0 ? null : copyPlan(aRows, aCols, lda);
    const bPlan = pinned || bAt >= 0 ? null : copyPlan(bRows, bCols, ldb);
    const packA = this.arenaEnd;
    const packB = align64(packA + roundUp(Math.min(MC, m), MR) * kcMax * 4);
    const aCopy = align64(packB + (inPlaceB || pinned ? 0 : roundUp(Math.min(NC, n), NR) * kcMax * 4));
    const bCopy = align64(aCopy + (aPlan ? aPlan.floats * 4 : 0));
    // In place, the last B panel reads up to NR-1 floats past the end of a row (lanes that are discarded).
    const cCopy = align64(bCopy + (bPlan ? (bPlan.floats + NR) * 4 : 0));
    const biasCopy = align64(cCopy + (cAt >= 0 ? 0 : m * n * 4));
    const heap = this.reserve(biasCopy + (bias ? n * 4 : 0));

    if (aPlan) copyIn(heap, aCopy >> 2, a, aOffset, lda, aRows, aCols, aPlan.ld);
    if (bias) heap.set(bias.subarray(0, n), biasCopy >> 2);
    if (bPlan) copyIn(heap, bCopy >> 2, b!, bOffset, ldb, bRows, bCols, bPlan.ld);
    if (accumulate && cAt < 0) copyIn(heap, cCopy >> 2, c, cOffset, ldc, m, n, n);

    // Element (i, p) of op(A) is at aBase + (i·sai + p·sap)·4; element (p, j) of op(B) at bBase + (p·sbp + j·sbj)·4;
    // element (i, j) of C at cBase + (i·cLd + j)·4. Each is the caller's array in the heap, or its copy.
    const aBase = aPlan ? aCopy : aAt, aLd = aPlan ? aPlan.ld : lda;
    const bBase = bPlan ? bCopy : bAt, bLd = bPlan ? bPlan.ld : ldb;
    const cBase = cAt >= 0 ? cAt : cCopy, cLd = cAt >= 0 ? ldc : n;
    const sai = transA ? 1 : aLd, sap = transA ? aLd : 1;
    const sbp = transB ? 1 : bLd, sbj = transB ? bLd : 1;
    const w = this.wasm;
    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc);
      for (let pc = 0; pc < k; pc += KC) {
        const kc = Math.min(KC, k - pc);
        const beta = accumulate || pc > 0 ? 1 : 0;
        const biasAt = bias && pc + kc === k ? biasCopy + jc * 4 : 0; // added once, on the last depth block
        let pb: number, bks: number, bps: number;
        if (pinned) {
          // Panel jc/NR starts at pinnedAt + (jc/NR)·k·NR floats; depth pc is pc·NR floats into it.
          pb = pinnedAt + (jc * k + pc * NR) * 4;
          bks = NR * 4;
          bps = k * NR * 4;
        } else if (inPlaceB) {
          pb = bBase + (pc * sbp + jc) * 4;
          bks = sbp * 4;
          bps = NR * 4;
        } else {
          w.packB(bBase + (pc * sbp + jc * sbj) * 4, sbj * 4, sbp * 4, nc, kc, packB);
          pb = packB;
          bks = NR * 4;
          bps = kc * NR * 4;
        }
        for (let ic = 0; ic < m; ic += MC) {
          const mc = Math.min(MC, m - ic);
          w.packA(aBase + (ic * sai + pc * sap) * 4, sai * 4, sap * 4, mc, kc, packA);
          w.macro(mc, nc, kc, packA, pb, bks, bps, cBase + (ic * cLd + jc) * 4, cLd * 4, beta, biasAt);
        }
      }
    }
    if (cAt >= 0) return; // written in place

    // C back out, row by row when the caller's rows are not contiguous (never touch the gaps).
    const cFloat = cCopy >> 2;
    if (ldc === n) c.set(heap.subarray(cFloat, cFloat + m * n), cOffset);
    else for (let i = 0; i < m; i++) c.set(heap.subarray(cFloat + i * n, cFloat + (i + 1) * n), cOffset + i * ldc);
  }
}

/** WasmGemm.pinB's handle: products against the packed op(B) at `at` in its kernel's memory. */
class PinnedWasmB implements PinnedGemm {
  private live = true;

  constructor(
    private readonly kernel: WasmGemmKernel, private readonly pin: { end: number; live: boolean }, private readonly at: number,
    readonly transB: boolean, readonly k: number, readonly n: number,
  ) {}

  get released(): boolean {
    return !this.live;
  }

  private check(what: string): void {
    if (!this.live) throw new Error(`PinnedGemm.${what}: this pinned operand (op(B) ${this.k}×${this.n}) was released`);
  }

  gemm(transA: boolean, m: number, a: Float32Array, aOffset: number, lda: number,
    c: Float32Array, cOffset: number, ldc: number, accumulate: boolean): void {
    const fn = 'PinnedGemm.gemm';
    this.check('gemm');
    const { k, n } = this;
    checkCounts(fn, { m, aOffset, cOffset });
    checkOperand(fn, 'a', 'lda', a, aOffset, lda, transA ? k : m, transA ? m : k);
    checkOperand(fn, 'c', 'ldc', c, cOffset, ldc, m, n);
    for (const [name, x] of [['a', a], ['c', c]] as const) {
      if (!(x instanceof Float32Array)) throw new TypeError(`${fn}: argument '${name}' must be a Float32Array, as the pinned B`);
    }
    this.kernel.multiply(transA, this.transB, m, n, k, a, aOffset, lda, null, 0, 0, this.at, c, cOffset, ldc, accumulate);
  }

  release(): void {
    this.check('release');
    this.live = false;
    this.kernel.unpin(this.pin);
  }
}

/** A bias for an n-column product: a Float32Array of at least n values (the first n are used). */
export function checkBias(fn: string, bias: ArrayLike<number>, n: number): void {
  if (!(bias instanceof Float32Array)) throw new TypeError(`${fn}: argument 'bias' must be a Float32Array`);
  if (bias.length < n) throw new RangeError(`${fn}: argument 'bias' is too short: the product has ${n} columns, the bias ${bias.length} values`);
}

/** Copies a rows×cols view (leading dimension ld) into heap at float index `at` with leading dimension ldMem. */
function copyIn(heap: Float32Array, at: number, x: Float32Array, offset: number, ld: number, rows: number, cols: number, ldMem: number): void {
  if (ldMem === ld) {
    heap.set(x.subarray(offset, offset + (rows - 1) * ld + cols), at);
  } else {
    for (let r = 0; r < rows; r++) heap.set(x.subarray(offset + r * ld, offset + r * ld + cols), at + r * ldMem);
  }
}
