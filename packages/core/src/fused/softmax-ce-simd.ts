/*
 * The row passes of softmax cross-entropy (softmax-ce.ts) for float32 in WebAssembly SIMD, with a vector
 * exp: the wasm backend's SoftmaxCEKernels.
 *
 * Why: the exp over every logit dominates a language model's loss. For W1's [400, 10000] logits the
 * JavaScript loops (Math.exp, one element at a time) took ~50 ms forward and ~50 ms backward (CPU time, on
 * the loaded 2-core machine); these ~9 ms each, copies included.
 *
 * The exp is Cephes' expf, four lanes at a time: n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two
 * parts, so r is exact to float32), exp(r) by a degree-7 polynomial (Horner form), times 2ⁿ built in the
 * exponent bits. Relative error below 2e-7 over [-87.3, 88.3] (a few float32 ulps; tested against
 * Math.exp); below -87.34 it returns 0 (exp(-∞) is 0), above 88.37 +∞ (2ⁿ overflows for n = 128; float32's
 * true limit is 88.72, and softmax only ever asks for x ≤ 0), NaN stays NaN.
 *
 * Rows are copied into this module's memory in chunks that stay in cache, each row padded with -∞ to a
 * multiple of 16 floats (exp(-∞) = 0 adds nothing to the sums, and -∞ changes no maximum), so the loops
 * need no scalar tail. The data lives in JavaScript typed arrays; one chunk's copy in (and, in the backward,
 * out) is a memcpy of what the loop then reads from cache.
 */
import { FunctionBuilder, ModuleBuilder, i32, uleb, v128 } from '../kernels/wasm/assembler.js';
import { wasmApi, type WasmMemory } from '../kernels/wasm/runtime.js';
import { wasmSimdSupported } from '../kernels/wasm/index.js';
import type { FloatArray } from '../dtype.js';
import { jsSoftmaxCE, type SoftmaxCEKernels } from './softmax-ce.js';

/** The instructions these functions need beyond the GEMM's assembler (opcodes of the SIMD proposal). */
class SimdFunction extends FunctionBuilder {
  private simdOp(opcode: number): this {
    this.code.push(0xfd);
    uleb(this.code, opcode);
    return this;
  }
  f32x4Sub(): this { return this.simdOp(0xe5); }
  /** Pseudo-min/max: b < a ? b : a and a < b ? b : a, one minps/maxps on x64 (f32x4.min/max, which must
   *  propagate NaN and order ±0, take about eight instructions there). A NaN first operand is kept. */
  f32x4PMin(): this { return this.simdOp(0xea); }
  f32x4PMax(): this { return this.simdOp(0xeb); }
  f32x4Splat(): this { return this.simdOp(0x13); }
  f32x4Eq(): this { return this.simdOp(0x41); }
  f32x4Lt(): this { return this.simdOp(0x43); }
  f32x4Nearest(): this { return this.simdOp(0x6a); }
  i32x4TruncSatF32x4S(): this { return this.simdOp(0xf8); }
  i32x4Add(): this { return this.simdOp(0xae); }
  i32x4Shl(): this { return this.simdOp(0xab); }
  i32x4Splat(): this { return this.simdOp(0x11); }
  v128AndNot(): this { return this.simdOp(0x4f); }
  f32x4ExtractLane(lane: number): this {
    this.simdOp(0x1f);
    this.code.push(lane);
    return this;
  }
}

// Cephes expf: the clamp, ln 2 in two parts, and the polynomial for exp(r) − 1 − r over r², highest power first.
const EXP_LO = -87.33654475; // ln(2⁻¹²⁶): the smallest normal result
const EXP_HI = 88.7228391; // ln(2¹²⁸) − ε
const LOG2E = 1.44269504088896341;
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
const MAGIC = 12582912; // 1.5·2²³
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];

/** The v128 locals one exp works in. */
interface ExpTemps { x: number; n: number; r: number; y: number }

function expTemps(f: SimdFunction, count: number): ExpTemps[] {
  return Array.from({ length: count }, () => ({ x: f.local(v128), n: f.local(v128), r: f.local(v128), y: f.local(v128) }));
}

/**
 * Emits exp of several vectors at once, step by step across them: `input(u)` pushes vector u's argument, and
 * exp of it ends in temps[u].y. Four independent chains interleaved ran 1.7x faster than one exp after
 * another (V8 does not overlap the iterations' long dependency chains by itself).
 *
 * n = round(x·log2 e) by the magic-number trick: adding 1.5·2²³ leaves round(x·log2 e) in the low mantissa
 * bits (round to nearest even), so the same sum gives n as a float (minus the magic) and, shifted left by 23,
 * the exponent field of 2ⁿ (the magic's own bits vanish in the shift). It replaces f32x4.nearest and
 * i32x4.trunc_sat_f32x4_s, which V8 lowers to long NaN-safe sequences on x64.
 */
function emitExps(f: SimdFunction, k: (v: number) => number, temps: readonly ExpTemps[], input: (u: number) => void): void {
  const each = (step: (t: ExpTemps, u: number) => void): void => temps.forEach(step);
  // x clamped to [EXP_LO, EXP_HI] (x first: a NaN stays NaN)
  each((t, u) => { input(u); f.tee(t.x).get(k(EXP_LO)).f32x4PMax().get(k(EXP_HI)).f32x4PMin().set(t.r); });
  // y = x·log2 e + magic; n = y − magic
  each((t) => { f.get(t.r).get(k(LOG2E)).f32x4Mul().get(k(MAGIC)).f32x4Add().set(t.y); });
  each((t) => { f.get(t.y).get(k(MAGIC)).f32x4Sub().set(t.n); });
  // r = x − n·ln2_hi − n·ln2_lo
  each((t) => { f.get(t.r).get(t.n).get(k(LN2_HI)).f32x4Mul().f32x4Sub().get(t.n).get(k(LN2_LO)).f32x4Mul().f32x4Sub().set(t.r); });
  // n = 2ⁿ, from its bits (bits(y) + 127) << 23
  each((t) => { f.get(t.y).get(k(127)).i32x4Add().i32Const(23).i32x4Shl().set(t.n); });
  // y = P(r) by Horner, then (P(r)·r² + r + 1)·2ⁿ, and 0 below EXP_LO (x = -∞ included)
  each((t) => { f.get(k(EXP_P[0])).get(t.r).f32x4Mul().get(k(EXP_P[1])).f32x4Add().set(t.y); });
  for (let i = 2; i < EXP_P.length; i++) each((t) => { f.get(t.y).get(t.r).f32x4Mul().get(k(EXP_P[i])).f32x4Add().set(t.y); });
  each((t) => { f.get(t.y).get(t.r).get(t.r).f32x4Mul().f32x4Mul().get(t.r).f32x4Add().get(k(1)).f32x4Add().get(t.n).f32x4Mul().set(t.y); });
  each((t) => { f.get(t.y).get(t.x).get(k(EXP_LO)).f32x4Lt().v128AndNot().set(t.y); });
}

/** Vectors per loop iteration: four 16-byte vectors, so row strides are padded to 64 bytes. */
const UNROLL = 4;

/** Declares v128 locals holding splatted constants; returns the lookup. Integer constants are i32x4 splats. */
function constants(f: SimdFunction, floats: readonly number[], ints: readonly number[]): (v: number) => number {
  const map = new Map<number, number>();
  for (const v of floats) {
    if (map.has(v)) continue;
    const l = f.local(v128);
    f.f32Const(v).f32x4Splat().set(l);
    map.set(v, l);
  }
  for (const v of ints) {
    const l = f.local(v128);
    f.i32Const(v).i32x4Splat().set(l);
    map.set(v, l);
  }
  return (v) => {
    const l = map.get(v);
    if (l === undefined) throw new Error(`softmax-ce-simd: constant ${v} was not declared`);
    return l;
  };
}

const EXP_FLOATS = [EXP_LO, EXP_HI, LOG2E, MAGIC, LN2_HI, LN2_LO, ...EXP_P, 1];
const EXP_INTS = [127];

/**
 * forward(rows, strideBytes, x, out): for each row of x (stride a multiple of 64 bytes), m = its maximum
 * (0 if -∞) and s = Σ exp(x − m), stored as two f32 at out + 8·row.
 */
function forwardFunction(): SimdFunction {
  const f = new SimdFunction([i32, i32, i32, i32], []);
  const [rows, stride, x, out] = [0, 1, 2, 3];
  const k = constants(f, [...EXP_FLOATS, -Infinity, 0], EXP_INTS);
  const temps = expTemps(f, UNROLL);
  const r = f.local(i32), row = f.local(i32), o = f.local(i32), m = f.local(v128);
  const acc = temps.map(() => f.local(v128));
  const horizontal = (local: number, op: () => void): void => {
    f.get(local).get(local).get(local).f32x4Shuffle([2, 3, 0, 1]); op(); f.set(local);
    f.get(local).get(local).get(local).f32x4Shuffle([1, 0, 3, 2]); op(); f.set(local);
  };
  f.forLt(r, 0, rows, 1, () => {
    f.get(x).get(r).get(stride).i32Mul().i32Add().set(row);
    f.get(k(-Infinity)).set(m);
    // (a NaN may or may not reach m; either way exp(NaN − m) makes s, and the loss, NaN)
    f.forLt(o, 0, stride, 16, () => { f.get(m).get(row).get(o).i32Add().v128Load(0).f32x4PMax().set(m); });
    horizontal(m, () => f.f32x4PMax());
    f.get(m).get(m).get(k(-Infinity)).f32x4Eq().v128AndNot().set(m);
    for (const a of acc) f.get(k(0)).set(a);
    f.forLt(o, 0, stride, 16 * UNROLL, () => {
      emitExps(f, k, temps, (u) => { f.get(row).get(o).i32Add().v128Load(16 * u).get(m).f32x4Sub(); });
      acc.forEach((a, u) => { f.get(a).get(temps[u].y).f32x4Add().set(a); });
    });
    f.get(acc[0]).get(acc[1]).f32x4Add().get(acc[2]).f32x4Add().get(acc[3]).f32x4Add().set(acc[0]);
    horizontal(acc[0], () => f.f32x4Add());
    f.get(out).get(r).i32Const(3).i32Shl().i32Add().get(m).f32x4ExtractLane(0).f32Store(0);
    f.get(out).get(r).i32Const(3).i32Shl().i32Add().get(acc[0]).f32x4ExtractLane(0).f32Store(4);
  });
  return f;
}

/** backward(rows, strideBytes, x, params): in place, x = exp(x − m)·c per row, with (m, c) two f32 at params + 8·row. */
function backwardFunction(): SimdFunction {
  const f = new SimdFunction([i32, i32, i32, i32], []);
  const [rows, stride, x, params] = [0, 1, 2, 3];
  const k = constants(f, EXP_FLOATS, EXP_INTS);
  const temps = expTemps(f, UNROLL);
  const r = f.local(i32), row = f.local(i32), o = f.local(i32), p = f.local(i32), m = f.local(v128), c = f.local(v128);
  f.forLt(r, 0, rows, 1, () => {
    f.get(x).get(r).get(stride).i32Mul().i32Add().set(row);
    f.get(params).get(r).i32Const(3).i32Shl().i32Add().set(p);
    f.get(p).v128Load32Splat(0).set(m);
    f.get(p).v128Load32Splat(4).set(c);
    f.forLt(o, 0, stride, 16 * UNROLL, () => {
      emitExps(f, k, temps, (u) => { f.get(row).get(o).i32Add().v128Load(16 * u).get(m).f32x4Sub(); });
      temps.forEach((t, u) => { f.get(row).get(o).i32Add().get(t.y).get(c).f32x4Mul().v128Store(16 * u); });
    });
  });
  return f;
}

/** exp of `bytes` (a multiple of 64) bytes at x into y, in place allowed: the vector exp alone, for its test. */
function expFunction(): SimdFunction {
  const f = new SimdFunction([i32, i32, i32], []);
  const [bytes, x, y] = [0, 1, 2];
  const k = constants(f, EXP_FLOATS, EXP_INTS);
  const temps = expTemps(f, UNROLL);
  const o = f.local(i32);
  f.forLt(o, 0, bytes, 16 * UNROLL, () => {
    emitExps(f, k, temps, (u) => { f.get(x).get(o).i32Add().v128Load(16 * u); });
    temps.forEach((t, u) => { f.get(y).get(o).i32Add().get(t.y).v128Store(16 * u); });
  });
  return f;
}

type Fn = (...args: number[]) => void;
interface Exports { memory: WasmMemory; forward: Fn; backward: Fn; exp: Fn }

function buildModule(): Uint8Array {
  const mod = new ModuleBuilder();
  mod.addFunction('forward', forwardFunction());
  mod.addFunction('backward', backwardFunction());
  mod.addFunction('exp', expFunction());
  mod.setMemory(1);
  return mod.encode();
}

/** Floats of logits per chunk (128 KiB, within L2), unless one row is longer. */
const CHUNK_FLOATS = 32768;

class SimdSoftmaxCE implements SoftmaxCEKernels {
  private heap: Float32Array;
  private rowIds = new Int32Array(0);

  constructor(private readonly wasm: Exports) {
    this.heap = new Float32Array(wasm.memory.buffer);
  }

  private reserve(floats: number): void {
    const bytes = floats * 4, have = this.wasm.memory.buffer.byteLength;
    if (bytes > have) this.wasm.memory.grow(Math.ceil((bytes - have) / 65536));
    if (this.heap.buffer !== this.wasm.memory.buffer) this.heap = new Float32Array(this.wasm.memory.buffer);
  }

  /** The chunk layout: rows per chunk, the padded row stride, where the per-row pairs go; memory reserved. */
  private layout(cols: number, rows: number): { per: number; stride: number; pairs: number } {
    const stride = Math.max(16, Math.ceil(cols / 16) * 16);
    const per = Math.max(1, Math.min(rows, Math.floor(CHUNK_FLOATS / stride)));
    const pairs = per * stride;
    this.reserve(pairs + 2 * per);
    if (this.rowIds.length < per) this.rowIds = new Int32Array(per);
    return { per, stride, pairs };
  }

  /** Copies the next counted rows from `r` on into the chunk (at most per); returns how many and the next r. */
  private fill(x: Float32Array, targets: Int32Array, r: number, rows: number, cols: number, ignoreIndex: number | null,
    per: number, stride: number): [number, number] {
    const heap = this.heap;
    let n = 0;
    for (; r < rows && n < per; r++) {
      if (targets[r] === ignoreIndex) continue;
      const at = n * stride;
      heap.set(x.subarray(r * cols, (r + 1) * cols), at);
      if (cols < stride) heap.fill(-Infinity, at + cols, at + stride);
      this.rowIds[n++] = r;
    }
    return [n, r];
  }

  forward(x: FloatArray, targets: Int32Array, rows: number, cols: number, ignoreIndex: number | null,
    losses: FloatArray, saved: Float64Array): void {
    if (!(x instanceof Float32Array)) return jsSoftmaxCE.forward(x, targets, rows, cols, ignoreIndex, losses, saved);
    const { per, stride, pairs } = this.layout(cols, rows);
    for (let r = 0; r < rows;) {
      const [n, next] = this.fill(x, targets, r, rows, cols, ignoreIndex, per, stride);
      r = next;
      if (n === 0) break;
      this.wasm.forward(n, stride * 4, 0, pairs * 4);
      const heap = this.heap;
      for (let i = 0; i < n; i++) {
        const row = this.rowIds[i], m = heap[pairs + 2 * i], s = heap[pairs + 2 * i + 1];
        saved[2 * row] = m;
        saved[2 * row + 1] = s;
        losses[row] = m + Math.log(s) - x[row * cols + targets[row]];
      }
    }
  }

  backward(x: FloatArray, targets: Int32Array, saved: Float64Array, g: FloatArray, rows: number, cols: number,
    ignoreIndex: number | null, dx: FloatArray): void {
    if (!(x instanceof Float32Array)) return jsSoftmaxCE.backward(x, targets, saved, g, rows, cols, ignoreIndex, dx);
    const { per, stride, pairs } = this.layout(cols, rows);
    for (let r = 0; r < rows;) {
      const [n, next] = this.fill(x, targets, r, rows, cols, ignoreIndex, per, stride);
      r = next;
      if (n === 0) break;
      const heap = this.heap;
      for (let i = 0; i < n; i++) {
        const row = this.rowIds[i];
        heap[pairs + 2 * i] = saved[2 * row];
        heap[pairs + 2 * i + 1] = g[row] / saved[2 * row + 1];
      }
      this.wasm.backward(n, stride * 4, 0, pairs * 4);
      for (let i = 0; i < n; i++) {
        const row = this.rowIds[i], o = row * cols;
        dx.set(heap.subarray(i * stride, i * stride + cols), o);
        dx[o + targets[row]] -= g[row];
      }
    }
  }

  /** The vector exp over a float32 array (for tests). */
  exp(values: Float32Array): Float32Array {
    const n16 = Math.ceil(values.length / 16) * 16;
    this.reserve(n16);
    this.heap.set(values);
    this.wasm.exp(n16 * 4, 0, 0);
    return this.heap.slice(0, values.length);
  }
}

export type SimdSoftmaxCEKernels = SoftmaxCEKernels & { exp(values: Float32Array): Float32Array };

let compiled: unknown = null;

/** The SIMD kernels for this thread, or null where the runtime has no WebAssembly SIMD. */
export function createSimdSoftmaxCE(): SimdSoftmaxCEKernels | null {
  if (!wasmApi || !wasmSimdSupported()) return null;
  compiled ??= new wasmApi.Module(buildModule());
  const instance = new wasmApi.Instance(compiled as InstanceType<typeof wasmApi.Module>, {});
  return new SimdSoftmaxCE(instance.exports as unknown as Exports);
}
