/*
 * The LSTM and GRU gate loops of fused/recurrent-kernel.ts in WebAssembly SIMD, for float32: four columns
 * at a time, with tanhF32's rational tanh (σ(x) = ½ + ½·tanh(x/2)). The WebAssembly backend hands these to
 * the fused recurrent kernels; the reference backend keeps the JavaScript loops, and float64 always does.
 *
 * Why: after the GEMMs, the scalar gate loops were the largest part of a fused LSTM layer's time: 13% of
 * the forward + backward of a 2x200 stack for the forward loop, 8% for the backward one (CPU profile),
 * some 30 ns a column. With this module the gate work, copies included, is ~5% of that profile.
 *
 * Each call copies its step's slices into this module's memory (the data lives in JavaScript typed
 * arrays), runs one function over every valid row for the columns [0, 4·⌊H/4⌋), copies the results back,
 * and leaves the last H mod 4 columns to the JavaScript loops, so no lane reads or writes past a gate block.
 */
import { FunctionBuilder, ModuleBuilder, i32, uleb, v128, type ValType } from '../kernels/wasm/assembler.js';
import { wasmApi, type WasmMemory } from '../kernels/wasm/runtime.js';
import { wasmSimdSupported } from '../kernels/wasm/index.js';
import type { FloatArray } from '../dtype.js';
import { gruGates, gruGatesBackward, jsGates, lstmGates, lstmGatesBackward, type GateKernels } from './recurrent-kernel.js';

/** The few instructions the gate functions need beyond the GEMM's assembler. */
class GateFunction extends FunctionBuilder {
  private simdOp(opcode: number): this {
    this.code.push(0xfd);
    uleb(this.code, opcode);
    return this;
  }
  f32x4Sub(): this { return this.simdOp(0xe5); }
  f32x4Div(): this { return this.simdOp(0xe7); }
  f32x4Min(): this { return this.simdOp(0xe8); }
  f32x4Max(): this { return this.simdOp(0xe9); }
  f32x4Splat(): this { return this.simdOp(0x13); }
  i32Load(offset = 0): this {
    this.code.push(0x28);
    uleb(this.code, 2);
    uleb(this.code, offset);
    return this;
  }
}

// tanhF32's coefficients (Eigen's), highest power first, and its clamp.
const TANH_P = [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-8, 1.48572235717979e-5, 6.37261928875436e-4, 4.89352455891786e-3];
const TANH_Q = [1.19825839466702e-6, 1.18534705686654e-4, 2.268434632439e-3, 4.89352518554385e-3];
const TANH_CLAMP = 7.90531110763549805;

/** An expression: a thunk that emits code leaving one v128 on the stack. */
type E = () => void;

/** The arrays a gate function takes: `wide` ones are [rows, G·H] (G gate blocks), others [rows, H];
 *  `shared` ones (the biases) are one row for all. */
interface ArrayArg { name: string; wide?: boolean; shared?: boolean }

/** What a function body gets: loads, stores, arithmetic and the activations over four columns. */
interface Emit {
  ld(name: string, block?: number): E;
  st(name: string, block: number, e: E): void;
  /** Evaluates e now into a fresh local and returns its reader (a statement inside the column loop). */
  let(e: E): E;
  add(...es: E[]): E;
  mul(...es: E[]): E;
  sub(a: E, b: E): E;
  tanh(e: E): E;
  sigmoid(e: E): E;
  one: E;
}

/**
 * A gate function: i32 parameters (rows, bytes, hb, mask, ...array addresses). `bytes` is the SIMD part of
 * a row's H columns in bytes (a multiple of 16), `hb` is H in bytes (the distance between gate blocks),
 * `mask` the address of one i32 per row (0 skips the row), or 0 when every row is valid. `body` emits the
 * work for four columns of the current row.
 */
function gateFunction(G: number, arrays: readonly ArrayArg[], body: (x: Emit) => void): GateFunction {
  const f = new GateFunction(Array.from({ length: 4 + arrays.length }, (): ValType => i32), []);
  const [rows, bytes, hb, mask] = [0, 1, 2, 3];

  const k = new Map<number, number>();
  const constant = (v: number): E => {
    let l = k.get(v);
    if (l === undefined) throw new Error(`gateFunction: constant ${v} was not declared`);
    return () => { f.get(l!); };
  };
  for (const v of [1, 0.5, TANH_CLAMP, -TANH_CLAMP, ...TANH_P, ...TANH_Q]) {
    if (k.has(v)) continue;
    const l = f.local(v128);
    k.set(v, l);
    f.f32Const(v).f32x4Splat().set(l);
  }
  const rowWide = f.local(i32);
  f.get(hb).i32Const(G).i32Mul().set(rowWide);

  const base = new Map<string, number[]>();
  for (const a of arrays) base.set(a.name, Array.from({ length: a.wide ? G : 1 }, () => f.local(i32)));
  const b = f.local(i32), o = f.local(i32);

  const x: Emit = {
    ld: (name, block = 0) => () => { f.get(base.get(name)![block]).get(o).i32Add().v128Load(0); },
    st: (name, block, e) => {
      f.get(base.get(name)![block]).get(o).i32Add();
      e();
      f.v128Store(0);
    },
    let: (e) => {
      const l = f.local(v128);
      e();
      f.set(l);
      return () => { f.get(l); };
    },
    add: (...es) => () => { es[0](); for (let i = 1; i < es.length; i++) { es[i](); f.f32x4Add(); } },
    mul: (...es) => () => { es[0](); for (let i = 1; i < es.length; i++) { es[i](); f.f32x4Mul(); } },
    sub: (a, c) => () => { a(); c(); f.f32x4Sub(); },
    tanh: (e) => () => {
      // x · P(x²) / Q(x²) on the clamped x, Horner from the highest power.
      const v = f.local(v128), v2 = f.local(v128);
      e();
      constant(TANH_CLAMP)(); f.f32x4Min();
      constant(-TANH_CLAMP)(); f.f32x4Max();
      f.set(v);
      f.get(v).get(v).f32x4Mul().set(v2);
      f.get(v);
      constant(TANH_P[0])();
      for (let i = 1; i < TANH_P.length; i++) { f.get(v2).f32x4Mul(); constant(TANH_P[i])(); f.f32x4Add(); }
      f.f32x4Mul();
      constant(TANH_Q[0])();
      for (let i = 1; i < TANH_Q.length; i++) { f.get(v2).f32x4Mul(); constant(TANH_Q[i])(); f.f32x4Add(); }
      f.f32x4Div();
    },
    sigmoid: (e) => () => {
      x.tanh(() => { e(); constant(0.5)(); f.f32x4Mul(); })();
      constant(0.5)(); f.f32x4Mul();
      constant(0.5)(); f.f32x4Add();
    },
    one: constant(1),
  };

  f.forLt(b, 0, rows, 1, () => {
    f.block(() => {
      // A masked row: leave this block (depth 1 from inside the `if`), on to the next row.
      f.get(mask).if(() => {
        f.get(mask).get(b).i32Const(2).i32Shl().i32Add().i32Load(0).i32Eqz().brIf(1);
      });
      for (const a of arrays) {
        const ptrs = base.get(a.name)!;
        const arg = 4 + arrays.indexOf(a);
        if (a.shared) f.get(arg).set(ptrs[0]);
        else f.get(arg).get(b).get(a.wide ? rowWide : hb).i32Mul().i32Add().set(ptrs[0]);
        for (let j = 1; j < ptrs.length; j++) f.get(ptrs[j - 1]).get(hb).i32Add().set(ptrs[j]);
      }
      f.forLt(o, 0, bytes, 16, () => body(x));
    });
  });
  return f;
}

const LSTM_FORWARD: ArrayArg[] = [
  { name: 'xp', wide: true }, { name: 'hh', wide: true }, { name: 'bx', wide: true, shared: true },
  { name: 'c' }, { name: 'h' }, { name: 'acts', wide: true }, { name: 'cPrev' }, { name: 'tanhC' },
];
const LSTM_BACKWARD: ArrayArg[] = [
  { name: 'dy' }, { name: 'acts', wide: true }, { name: 'cPrev' }, { name: 'tanhC' }, { name: 'dh' }, { name: 'dc' },
  { name: 'dxp', wide: true },
];
const GRU_FORWARD: ArrayArg[] = [
  { name: 'xp', wide: true }, { name: 'hh', wide: true }, { name: 'bx', wide: true, shared: true }, { name: 'bhn', shared: true },
  { name: 'h' }, { name: 'acts', wide: true }, { name: 'hnSaved' },
];
const GRU_BACKWARD: ArrayArg[] = [
  { name: 'dy' }, { name: 'acts', wide: true }, { name: 'hPrev' }, { name: 'hnSaved' }, { name: 'dh' },
  { name: 'dxp', wide: true }, { name: 'dhh', wide: true }, { name: 'dhDirect' },
];

/** The module: the four gate functions and one memory. The formulas are those of the JavaScript loops. */
function buildGateModule(): Uint8Array {
  const mod = new ModuleBuilder();
  mod.addFunction('lstmForward', gateFunction(4, LSTM_FORWARD, (x) => {
    const pre = (j: number): E => x.add(x.ld('xp', j), x.ld('hh', j), x.ld('bx', j));
    const i = x.let(x.sigmoid(pre(0))), f = x.let(x.sigmoid(pre(1))), g = x.let(x.tanh(pre(2))), o = x.let(x.sigmoid(pre(3)));
    const cp = x.let(x.ld('c'));
    const cn = x.let(x.add(x.mul(f, cp), x.mul(i, g)));
    const tc = x.let(x.tanh(cn));
    x.st('c', 0, cn);
    x.st('h', 0, x.mul(o, tc));
    x.st('acts', 0, i); x.st('acts', 1, f); x.st('acts', 2, g); x.st('acts', 3, o);
    x.st('cPrev', 0, cp);
    x.st('tanhC', 0, tc);
  }));
  mod.addFunction('lstmBackward', gateFunction(4, LSTM_BACKWARD, (x) => {
    const dhv = x.let(x.add(x.ld('dh'), x.ld('dy')));
    const i = x.let(x.ld('acts', 0)), f = x.let(x.ld('acts', 1)), g = x.let(x.ld('acts', 2)), o = x.let(x.ld('acts', 3));
    const tc = x.let(x.ld('tanhC'));
    const dcv = x.let(x.add(x.ld('dc'), x.mul(dhv, o, x.sub(x.one, x.mul(tc, tc)))));
    x.st('dxp', 0, x.mul(dcv, g, i, x.sub(x.one, i)));
    x.st('dxp', 1, x.mul(dcv, x.ld('cPrev'), f, x.sub(x.one, f)));
    x.st('dxp', 2, x.mul(dcv, i, x.sub(x.one, x.mul(g, g))));
    x.st('dxp', 3, x.mul(dhv, tc, o, x.sub(x.one, o)));
    x.st('dc', 0, x.mul(dcv, f));
  }));
  mod.addFunction('gruForward', gateFunction(3, GRU_FORWARD, (x) => {
    const hn = x.let(x.add(x.ld('hh', 2), x.ld('bhn')));
    const r = x.let(x.sigmoid(x.add(x.ld('xp', 0), x.ld('hh', 0), x.ld('bx', 0))));
    const z = x.let(x.sigmoid(x.add(x.ld('xp', 1), x.ld('hh', 1), x.ld('bx', 1))));
    const n = x.let(x.tanh(x.add(x.ld('xp', 2), x.ld('bx', 2), x.mul(r, hn))));
    x.st('h', 0, x.add(n, x.mul(z, x.sub(x.ld('h'), n))));
    x.st('acts', 0, r); x.st('acts', 1, z); x.st('acts', 2, n);
    x.st('hnSaved', 0, hn);
  }));
  mod.addFunction('gruBackward', gateFunction(3, GRU_BACKWARD, (x) => {
    const dhv = x.let(x.add(x.ld('dh'), x.ld('dy')));
    const r = x.let(x.ld('acts', 0)), z = x.let(x.ld('acts', 1)), n = x.let(x.ld('acts', 2));
    const dnp = x.let(x.mul(dhv, x.sub(x.one, z), x.sub(x.one, x.mul(n, n))));
    const drp = x.let(x.mul(dnp, x.ld('hnSaved'), r, x.sub(x.one, r)));
    const dzp = x.let(x.mul(dhv, x.sub(x.ld('hPrev'), n), z, x.sub(x.one, z)));
    x.st('dxp', 0, drp); x.st('dxp', 1, dzp); x.st('dxp', 2, dnp);
    x.st('dhh', 0, drp); x.st('dhh', 1, dzp); x.st('dhh', 2, x.mul(dnp, r));
    x.st('dhDirect', 0, x.mul(dhv, z));
  }));
  mod.setMemory(1);
  return mod.encode();
}

type GateFn = (...args: number[]) => void;
interface GateExports { memory: WasmMemory; lstmForward: GateFn; lstmBackward: GateFn; gruForward: GateFn; gruBackward: GateFn }

/** Bump layout of one call's arrays in the module's memory: float offsets, 16-byte aligned. */
class Layout {
  private end = 0;
  /** Reserves n floats and returns their float offset. */
  take(n: number): number {
    const at = this.end;
    this.end += Math.ceil(n / 4) * 4;
    return at;
  }
  get floats(): number {
    return this.end;
  }
}

/**
 * GateKernels over this module, for float32 arrays (float64 goes to the JavaScript loops). One instance per
 * thread, made by createSimdGates().
 */
class SimdGates implements GateKernels {
  private heap: Float32Array;
  private heapI32: Int32Array;

  constructor(private readonly wasm: GateExports) {
    this.heap = new Float32Array(wasm.memory.buffer);
    this.heapI32 = new Int32Array(wasm.memory.buffer);
  }

  private reserve(floats: number): void {
    const bytes = floats * 4, have = this.wasm.memory.buffer.byteLength;
    if (bytes > have) this.wasm.memory.grow(Math.ceil((bytes - have) / 65536));
    if (this.heap.buffer !== this.wasm.memory.buffer) {
      this.heap = new Float32Array(this.wasm.memory.buffer);
      this.heapI32 = new Int32Array(this.wasm.memory.buffer);
    }
  }

  /** Copies a [B, n] block in, and returns its byte address. */
  private put(at: number, src: FloatArray): number {
    this.heap.set(src, at);
    return at * 4;
  }
  /** The mask as one i32 per row at `at`; returns its byte address, or 0 for no mask. */
  private putMask(at: number, mask: Uint8Array | null, B: number): number {
    if (!mask) return 0;
    for (let b = 0; b < B; b++) this.heapI32[at + b] = mask[b];
    return at * 4;
  }
  /** Copies [B, n] back out: whole when every row is valid, else the valid rows only (masked rows keep
   *  what dst holds). */
  private get(dst: FloatArray, at: number, n: number, B: number, mask: Uint8Array | null): void {
    if (!mask) {
      dst.set(this.heap.subarray(at, at + B * n));
      return;
    }
    for (let b = 0; b < B; b++) if (mask[b] !== 0) dst.set(this.heap.subarray(at + b * n, at + (b + 1) * n), b * n);
  }

  lstm(B: number, H: number, xp: FloatArray, hh: FloatArray, bx: FloatArray, c: FloatArray, h: FloatArray, y: FloatArray,
    acts: FloatArray | null, cPrev: FloatArray | null, tanhC: FloatArray | null, mask: Uint8Array | null): void {
    if (!(xp instanceof Float32Array)) return jsGates.lstm(B, H, xp, hh, bx, c, h, y, acts, cPrev, tanhC, mask);
    const H4 = H & ~3, BH = B * H, BG = B * 4 * H;
    if (H4 > 0) {
      const L = new Layout();
      const aXp = L.take(BG), aHh = L.take(BG), aBx = L.take(4 * H), aC = L.take(BH), aH = L.take(BH);
      const aActs = L.take(BG), aCp = L.take(BH), aTc = L.take(BH), aMask = L.take(B);
      this.reserve(L.floats);
      this.wasm.lstmForward(B, H4 * 4, H * 4, this.putMask(aMask, mask, B),
        this.put(aXp, xp), this.put(aHh, hh), this.put(aBx, bx), this.put(aC, c), this.put(aH, h),
        aActs * 4, aCp * 4, aTc * 4);
      // c and h whole: masked rows were copied in and left alone.
      c.set(this.heap.subarray(aC, aC + BH));
      h.set(this.heap.subarray(aH, aH + BH));
      if (acts) {
        this.get(acts, aActs, 4 * H, B, mask);
        this.get(cPrev!, aCp, H, B, mask);
        this.get(tanhC!, aTc, H, B, mask);
      }
    }
    if (H4 < H) lstmGates(B, H, H4, H, xp, hh, bx, c, h, y, acts, cPrev, tanhC, mask);
    copyValidRows(y, h, H, B, mask);
  }

  lstmBackward(B: number, H: number, dy: FloatArray, acts: FloatArray, cPrev: FloatArray, tanhC: FloatArray,
    dh: FloatArray, dc: FloatArray, dxp: FloatArray, mask: Uint8Array | null): void {
    if (!(dy instanceof Float32Array)) return jsGates.lstmBackward(B, H, dy, acts, cPrev, tanhC, dh, dc, dxp, mask);
    const H4 = H & ~3, BH = B * H, BG = B * 4 * H;
    if (H4 > 0) {
      const L = new Layout();
      const aDy = L.take(BH), aActs = L.take(BG), aCp = L.take(BH), aTc = L.take(BH), aDh = L.take(BH), aDc = L.take(BH);
      const aDxp = L.take(BG), aMask = L.take(B);
      this.reserve(L.floats);
      this.wasm.lstmBackward(B, H4 * 4, H * 4, this.putMask(aMask, mask, B),
        this.put(aDy, dy), this.put(aActs, acts), this.put(aCp, cPrev), this.put(aTc, tanhC), this.put(aDh, dh), this.put(aDc, dc),
        aDxp * 4);
      dc.set(this.heap.subarray(aDc, aDc + BH));
      this.get(dxp, aDxp, 4 * H, B, mask);
    }
    if (H4 < H) lstmGatesBackward(B, H, H4, H, dy, acts, cPrev, tanhC, dh, dc, dxp, mask);
  }

  gru(B: number, H: number, xp: FloatArray, hh: FloatArray, bx: FloatArray, bhn: FloatArray, h: FloatArray, y: FloatArray,
    acts: FloatArray | null, hnSaved: FloatArray | null, mask: Uint8Array | null): void {
    if (!(xp instanceof Float32Array)) return jsGates.gru(B, H, xp, hh, bx, bhn, h, y, acts, hnSaved, mask);
    const H4 = H & ~3, BH = B * H, BG = B * 3 * H;
    if (H4 > 0) {
      const L = new Layout();
      const aXp = L.take(BG), aHh = L.take(BG), aBx = L.take(3 * H), aBhn = L.take(H), aH = L.take(BH);
      const aActs = L.take(BG), aHn = L.take(BH), aMask = L.take(B);
      this.reserve(L.floats);
      this.wasm.gruForward(B, H4 * 4, H * 4, this.putMask(aMask, mask, B),
        this.put(aXp, xp), this.put(aHh, hh), this.put(aBx, bx), this.put(aBhn, bhn), this.put(aH, h), aActs * 4, aHn * 4);
      h.set(this.heap.subarray(aH, aH + BH));
      if (acts) {
        this.get(acts, aActs, 3 * H, B, mask);
        this.get(hnSaved!, aHn, H, B, mask);
      }
    }
    if (H4 < H) gruGates(B, H, H4, H, xp, hh, bx, bhn, h, y, acts, hnSaved, mask);
    copyValidRows(y, h, H, B, mask);
  }

  gruBackward(B: number, H: number, dy: FloatArray, acts: FloatArray, hPrev: FloatArray, hnSaved: FloatArray,
    dh: FloatArray, dxp: FloatArray, dhh: FloatArray, dhDirect: FloatArray, mask: Uint8Array | null): void {
    if (!(dy instanceof Float32Array)) return jsGates.gruBackward(B, H, dy, acts, hPrev, hnSaved, dh, dxp, dhh, dhDirect, mask);
    const H4 = H & ~3, BH = B * H, BG = B * 3 * H;
    if (H4 > 0) {
      const L = new Layout();
      const aDy = L.take(BH), aActs = L.take(BG), aHp = L.take(BH), aHn = L.take(BH), aDh = L.take(BH);
      const aDxp = L.take(BG), aDhh = L.take(BG), aDd = L.take(BH), aMask = L.take(B);
      this.reserve(L.floats);
      this.wasm.gruBackward(B, H4 * 4, H * 4, this.putMask(aMask, mask, B),
        this.put(aDy, dy), this.put(aActs, acts), this.put(aHp, hPrev), this.put(aHn, hnSaved), this.put(aDh, dh),
        aDxp * 4, aDhh * 4, aDd * 4);
      this.get(dxp, aDxp, 3 * H, B, mask);
      this.get(dhh, aDhh, 3 * H, B, mask);
      this.get(dhDirect, aDd, H, B, mask);
    }
    if (H4 < H) gruGatesBackward(B, H, H4, H, dy, acts, hPrev, hnSaved, dh, dxp, dhh, dhDirect, mask);
  }
}

/** y rows = h rows, for the valid rows (the others keep their zeros). */
function copyValidRows(y: FloatArray, h: FloatArray, H: number, B: number, mask: Uint8Array | null): void {
  if (!mask) {
    y.set(h);
    return;
  }
  for (let b = 0; b < B; b++) if (mask[b] !== 0) y.set(h.subarray(b * H, (b + 1) * H), b * H);
}

let compiled: unknown = null;

/** The SIMD gate kernels for this thread, or null where the runtime has no WebAssembly SIMD. */
export function createSimdGates(): GateKernels | null {
  if (!wasmApi || !wasmSimdSupported()) return null;
  compiled ??= new wasmApi.Module(buildGateModule());
  const instance = new wasmApi.Instance(compiled as InstanceType<typeof wasmApi.Module>, {});
  return new SimdGates(instance.exports as unknown as GateExports);
}
