/*
 * Host kernels of the fused recurrent primitive (fused/recurrent.ts): one layer-direction of an Elman
 * RNN, LSTM or GRU over T steps, forward and whole-sequence backward, on host typed arrays. The matrix
 * products go through the backend's GEMM (the `gemm` and `pinGemm` arguments: the per-step products against
 * W_hh hold it pinned for the whole sequence), so the WebAssembly backend runs them with its SIMD kernel; the
 * gate nonlinearities are one fused loop per step.
 *
 * Layout (time-major, row-major): xp [T, B, G·H] (x·W_ihᵀ, precomputed for all steps by the caller in one
 * product), W_hh [G·H, H], b_ih and b_hh [G·H] (either may be absent), h0/c0 [B, H]; y [T + S, B, H] holds
 * the outputs, then h_T (and c_T for LSTM): S = 2 for LSTM, 1 otherwise. Gate blocks: LSTM i, f, g, o;
 * GRU r, z, n; RNN one. Pre-activations are xp + b_ih + h·W_hhᵀ + b_hh, except GRU's n gate:
 * n = tanh(xp_n + b_in + r ⊙ (W_hn h + b_hn)), as PyTorch.
 */
import { allocArray, type DType, type FloatArray } from '../dtype.js';
import { outsidePool } from '../storage-pool.js';
import type { PinnedGemm } from '../kernels/gemm-reference.js';

export type RecurrentKind = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

export interface RecurrentSpec {
  readonly kind: RecurrentKind;
  readonly steps: number; // T
  readonly batch: number; // B
  readonly hidden: number; // H
  /** Run t = T-1 → 0. */
  readonly reverse: boolean;
  /** Valid steps per entry, each in [0, T] (null: all T). Steps past an entry's length keep its state and output 0. */
  readonly lengths: Int32Array | null;
}

/** What the forward keeps for the backward (opaque to the caller). */
export type RecurrentSaved<S> = readonly S[];

export interface RecurrentGradients<S> {
  dxp: S; // [T, B, G·H]
  dwHh: S | null; // [G·H, H]
  dbIh: S | null; // [G·H]
  dbHh: S | null; // [G·H]
  dh0: S; // [B, H]
  dc0: S | null; // [B, H], LSTM
}

/** C[m×n] = op(A)·op(B), row-major with leading dimensions (the backend's GEMM; overwrites C). */
export type Gemm = (transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: FloatArray, aOff: number, lda: number, b: FloatArray, bOff: number, ldb: number,
  c: FloatArray, cOff: number, ldc: number) => void;

/**
 * Holds B for many products C = op(A)·op(B) (the backend's; see PinnedGemm in kernels/gemm-reference.ts): the
 * per-step products against W_hh. The wasm backend packs W_hh into its kernel's memory once per sequence instead
 * of copying it in at every step; the reference backend transposes it once when transB.
 */
export type PinGemm = (transB: boolean, k: number, n: number, b: FloatArray, bOff: number, ldb: number) => PinnedGemm;

export function gateBlocks(kind: RecurrentKind): number {
  return kind === 'lstm' ? 4 : kind === 'gru' ? 3 : 1;
}

export function stateRows(kind: RecurrentKind): number {
  return kind === 'lstm' ? 2 : 1;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * tanh for float32 data: Eigen's rational approximation x·P(x²)/Q(x²) on [-7.9053, 7.9053], clamped
 * outside. Max abs error 2.6e-7 (about 4 float32 ulps near ±1), and 6x faster than Math.tanh in V8
 * (4.7 vs 29 ns an element, measured): with Math.tanh/Math.exp the LSTM gate loop took twice as long as
 * the step's GEMM. float64 (gradient checks, PyTorch fixtures at 1e-10) keeps Math.tanh and Math.exp.
 */
export function tanhF32(x: number): number {
  const c = 7.90531110763549805;
  const v = x > c ? c : x < -c ? -c : x;
  const v2 = v * v;
  let p = -2.76076847742355e-16;
  p = p * v2 + 2.00018790482477e-13;
  p = p * v2 - 8.60467152213735e-11;
  p = p * v2 + 5.12229709037114e-8;
  p = p * v2 + 1.48572235717979e-5;
  p = p * v2 + 6.37261928875436e-4;
  p = p * v2 + 4.89352455891786e-3;
  let q = 1.19825839466702e-6;
  q = q * v2 + 1.18534705686654e-4;
  q = q * v2 + 2.268434632439e-3;
  q = q * v2 + 4.89352518554385e-3;
  return (v * p) / q;
}

/** σ(x) = (1 + tanh(x/2)) / 2, with tanhF32: max abs error 1.3e-7. */
export function sigmoidF32(x: number): number {
  return 0.5 + 0.5 * tanhF32(0.5 * x);
}

/** Entries valid at step t: a 0/1 mask, and whether any / all are. */
function activeAt(spec: RecurrentSpec, t: number, mask: Uint8Array): { any: boolean; all: boolean } {
  const L = spec.lengths;
  if (!L) return { any: true, all: true };
  let any = false, all = true;
  for (let b = 0; b < spec.batch; b++) {
    const v = t < L[b];
    mask[b] = v ? 1 : 0;
    if (v) any = true; else all = false;
  }
  return { any, all };
}

/*
 * Scratch and saved buffers come from a small per-thread pool and go back to it once used (the saved ones
 * after the backward, which runs once: autograd releases the node). Without it, garbage collection of these
 * large typed arrays took 8% of a 2x200 LSTM training step (CPU profile), allocation another 3%.
 * Buffers handed to the caller (y, the gradients) are never pooled.
 */
const pool = new Map<string, FloatArray[]>();
const POOL_DEPTH = 8; // per dtype and length: enough for the layer-directions of a deep bidirectional stack

/** A zero-filled buffer (recycled buffers are cleared, so masked rows read as 0 like fresh ones). */
function take(dtype: DType, n: number, zero = true): FloatArray {
  const b = pool.get(`${dtype}:${n}`)?.pop();
  // Outside any StoragePool run: this pool keeps the buffer, and one buffer with two owners would be handed
  // out twice (it was: the coordinator's second step trained on a scratch buffer another op had been given).
  if (!b) return outsidePool(() => allocArray(dtype, n)) as FloatArray;
  if (zero) b.fill(0);
  return b;
}

function give(...bufs: (FloatArray | null)[]): void {
  for (const b of bufs) {
    if (!b) continue;
    const key = `${b instanceof Float32Array ? 'float32' : 'float64'}:${b.length}`;
    let list = pool.get(key);
    if (!list) pool.set(key, (list = []));
    if (list.length < POOL_DEPTH && !list.includes(b)) list.push(b);
  }
}

/**
 * The gate loops of one time step, for every valid batch row (mask null: all rows). All arrays are that
 * step's [B, ·] slices. The JavaScript loops below are the reference; fused/recurrent-simd.ts runs the same
 * formulas in WebAssembly SIMD for float32 (the WebAssembly backend passes it in).
 */
export interface GateKernels {
  /** LSTM: c, h updated in place; y = h'; acts [B, 4H] = i, f, g, o; cPrev = c entering; tanhC = tanh(c'). */
  lstm(B: number, H: number, xp: FloatArray, hh: FloatArray, bx: FloatArray, c: FloatArray, h: FloatArray, y: FloatArray,
    acts: FloatArray | null, cPrev: FloatArray | null, tanhC: FloatArray | null, mask: Uint8Array | null): void;
  /** dxp [B, 4H] (pre-activation gradients) from dh' = dh + dy and dc; dc ← dc'·f in place. */
  lstmBackward(B: number, H: number, dy: FloatArray, acts: FloatArray, cPrev: FloatArray, tanhC: FloatArray,
    dh: FloatArray, dc: FloatArray, dxp: FloatArray, mask: Uint8Array | null): void;
  /** GRU: h updated in place; y = h'; acts [B, 3H] = r, z, n; hnSaved = W_hn h + b_hn. */
  gru(B: number, H: number, xp: FloatArray, hh: FloatArray, bx: FloatArray, bhn: FloatArray, h: FloatArray, y: FloatArray,
    acts: FloatArray | null, hnSaved: FloatArray | null, mask: Uint8Array | null): void;
  /** dxp and dhh [B, 3H] (they differ in the n block: r scales it), dhDirect = z ⊙ dh'. */
  gruBackward(B: number, H: number, dy: FloatArray, acts: FloatArray, hPrev: FloatArray, hnSaved: FloatArray,
    dh: FloatArray, dxp: FloatArray, dhh: FloatArray, dhDirect: FloatArray, mask: Uint8Array | null): void;
}

/**
 * Forward over the whole sequence. Returns y [T + S, B, H] and, when `save`, what the backward needs:
 * the state entering every step (hPrev [T, B, H]) and the gate activations [T, B, G·H]; LSTM also keeps
 * c entering each step and tanh(c') [T, B, H]; GRU keeps W_hn h + b_hn [T, B, H]; RNN reads its outputs from y.
 */
export function recurrentForwardHost(
  spec: RecurrentSpec, xp: FloatArray, wHh: FloatArray, bIh: FloatArray | null, bHh: FloatArray | null,
  h0: FloatArray, c0: FloatArray | null, save: boolean, dtype: DType, pinGemm: PinGemm, gates: GateKernels = jsGates,
): { y: FloatArray; saved: FloatArray[] } {
  const { kind, steps: T, batch: B, hidden: H, reverse } = spec;
  const G = gateBlocks(kind), GH = G * H, BH = B * H, BGH = B * GH;
  const alloc = (n: number): FloatArray => allocArray(dtype, n) as FloatArray;
  const y = alloc((T + stateRows(kind)) * BH);
  const h = take(dtype, BH, false), c = kind === 'lstm' ? take(dtype, BH, false) : null;
  h.set(h0);
  if (c) c.set(c0!);
  // The biases as one vector added beside xp (b_ih + b_hh), except GRU's b_hn, which stays inside r ⊙ (·).
  const bx = take(dtype, GH), bhn = take(dtype, H);
  if (bIh) bx.set(bIh);
  if (bHh) {
    const folded = kind === 'gru' ? 2 * H : GH;
    for (let j = 0; j < folded; j++) bx[j] += bHh[j];
    if (kind === 'gru') bhn.set(bHh.subarray(2 * H, 3 * H));
  }
  const hh = take(dtype, BGH, false); // overwritten by every step's product
  const hPrev = save ? take(dtype, T * BH) : null;
  const acts = save ? take(dtype, T * BGH) : null;
  const extra = save && (kind === 'lstm' || kind === 'gru') ? take(dtype, T * BH) : null; // LSTM: c entering; GRU: W_hn h + b_hn
  const tanhC = save && kind === 'lstm' ? take(dtype, T * BH) : null;
  const mask = new Uint8Array(B);
  const relu = kind === 'rnn_relu';
  const at = (buf: FloatArray | null, t: number, n: number): FloatArray | null => (buf ? buf.subarray(t * n, (t + 1) * n) : null);

  // W_hhᵀ [H, G·H] held for all T products h·W_hhᵀ (PinGemm): the wasm backend packs it into its GEMM's memory
  // once instead of copying W_hh in at every step; the reference backend transposes it once. Measured by CPU time
  // on the loaded 2-core machine (A/B in one process, docs/kernels.md): the step's product 1.2x (H 200, B 20) to
  // 1.6x (H 650) faster, 2-layer stacks' forward + backward 1.03–1.24x (forward alone 1.10–1.34x).
  const w = pinGemm(true, H, GH, wHh, 0, H);
  try {
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      const { any, all } = activeAt(spec, t, mask);
      if (!any) continue;
      w.gemm(false, B, h, 0, H, hh, 0, GH, false); // [B, G·H] = h·W_hhᵀ
      if (hPrev) hPrev.set(h, t * BH);
      const m = all ? null : mask;
      const xpT = xp.subarray(t * BGH, (t + 1) * BGH), yT = y.subarray(t * BH, (t + 1) * BH);
      if (kind === 'lstm') gates.lstm(B, H, xpT, hh, bx, c!, h, yT, at(acts, t, BGH), at(extra, t, BH), at(tanhC, t, BH), m);
      else if (kind === 'gru') gates.gru(B, H, xpT, hh, bx, bhn, h, yT, at(acts, t, BGH), at(extra, t, BH), m);
      else rnnGates(B, H, xpT, hh, bx, h, yT, m, relu);
    }
  } finally {
    w.release();
  }
  y.set(h, T * BH);
  if (c) y.set(c, (T + 1) * BH);
  give(h, c, bx, bhn, hh);
  const saved: FloatArray[] = !save ? [] : kind === 'lstm' ? [hPrev!, acts!, extra!, tanhC!, y] : kind === 'gru' ? [hPrev!, acts!, extra!, y] : [hPrev!, y];
  return { y, saved };
}

/**
 * The whole-sequence backward: one BPTT loop computes the gate gradients of every step (dh and dc run
 * backwards through time, one [B, G·H]·[G·H, H] product per step), then dW_hh is one product over all steps,
 * dG_allᵀ [G·H, T·B] · hPrev [T·B, H], and db_hh one column sum. dxp is the gate gradients themselves
 * (the caller's x·W_ihᵀ product turns them into dW_ih and dx, again one product each).
 */
export function recurrentBackwardHost(
  spec: RecurrentSpec, saved: readonly FloatArray[], wHh: FloatArray, dy: FloatArray,
  needs: { wHh: boolean; bIh: boolean; bHh: boolean }, dtype: DType, gemm: Gemm, pinGemm: PinGemm, gates: GateKernels = jsGates,
): RecurrentGradients<FloatArray> {
  const { kind, steps: T, batch: B, hidden: H, reverse } = spec;
  const G = gateBlocks(kind), GH = G * H, BH = B * H, BGH = B * GH;
  const alloc = (n: number): FloatArray => allocArray(dtype, n) as FloatArray;
  const [hPrev, acts] = saved;
  const dh = alloc(BH);
  dh.set(dy.subarray(T * BH, (T + 1) * BH));
  const dc = kind === 'lstm' ? alloc(BH) : null;
  if (dc) dc.set(dy.subarray((T + 1) * BH, (T + 2) * BH));
  const dxp = alloc(T * BGH);
  // The gradient reaching h·W_hhᵀ (+ b_hh) differs from dxp only for GRU, where r scales the n block.
  const dhh = kind === 'gru' ? take(dtype, T * BGH) : dxp;
  const dhDirect = kind === 'gru' ? take(dtype, BH) : null; // GRU: z ⊙ dh' flows to h without the product
  const tmp = take(dtype, BH, false);
  const mask = new Uint8Array(B);
  const relu = kind === 'rnn_relu';
  const at = (buf: FloatArray, t: number, n: number): FloatArray => buf.subarray(t * n, (t + 1) * n);

  // W_hh [G·H, H] held for all T products dG_t·W_hh (see the forward).
  const w = pinGemm(false, GH, H, wHh, 0, H);
  try {
    for (let s = T - 1; s >= 0; s--) {
      const t = reverse ? T - 1 - s : s;
      const { any, all } = activeAt(spec, t, mask);
      if (!any) continue;
      const m = all ? null : mask; // entries past their length: dh and dc pass through unchanged
      const dyT = at(dy, t, BH);
      if (kind === 'lstm') gates.lstmBackward(B, H, dyT, at(acts, t, BGH), at(saved[2], t, BH), at(saved[3], t, BH), dh, dc!, at(dxp, t, BGH), m);
      else if (kind === 'gru') gates.gruBackward(B, H, dyT, at(acts, t, BGH), at(hPrev, t, BH), at(saved[2], t, BH), dh, at(dxp, t, BGH), at(dhh, t, BGH), dhDirect!, m);
      else rnnGatesBackward(B, H, dyT, at(saved[1], t, BH), dh, at(dxp, t, BGH), m, relu);
      w.gemm(false, B, dhh, t * BGH, GH, tmp, 0, H, false); // [B, H] = dG_t · W_hh
      if (all && !dhDirect) dh.set(tmp);
      else {
        for (let b = 0; b < B; b++) {
          if (!all && mask[b] === 0) continue;
          const so = b * H;
          if (dhDirect) for (let j = 0; j < H; j++) dh[so + j] = tmp[so + j] + dhDirect[so + j];
          else for (let j = 0; j < H; j++) dh[so + j] = tmp[so + j];
        }
      }
    }
  } finally {
    w.release();
  }

  let dwHh: FloatArray | null = null;
  if (needs.wHh) {
    dwHh = alloc(GH * H);
    gemm(true, false, GH, H, T * B, dhh, 0, GH, hPrev, 0, H, dwHh, 0, H); // Σ_t dG_tᵀ · h_{t-1}
  }
  const colSums = (m: FloatArray): FloatArray => columnSums(m, T * B, GH, alloc(GH));
  const dbIh = needs.bIh ? colSums(dxp) : null;
  const dbHh = !needs.bHh ? null : dhh === dxp && dbIh ? dbIh.slice() : colSums(dhh);
  // The saved buffers are done with: this backward runs once (autograd releases the node after it).
  give(hPrev, acts, kind === 'lstm' || kind === 'gru' ? saved[2] : null, kind === 'lstm' ? saved[3] : null, dhh === dxp ? null : dhh, dhDirect, tmp);
  return { dxp, dwHh, dbIh, dbHh, dh0: dh, dc0: dc };
}

/** out[j] += Σ_r m[r, j], four rows at a time (3x faster than row by row: out is read and written a quarter as often). */
function columnSums(m: FloatArray, rows: number, cols: number, out: FloatArray): FloatArray {
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) out[j] += m[o + j] + m[o + cols + j] + m[o + 2 * cols + j] + m[o + 3 * cols + j];
  }
  for (; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) out[j] += m[o + j];
  }
  return out;
}

// ---- the gate loops in JavaScript --------------------------------------------------------------------
// One function per kind and direction, so that each loop stays monomorphic for V8; columns [j0, j1) of
// every valid row, so the SIMD version can hand the last H mod 4 columns back to them. float32 data uses
// tanhF32/sigmoidF32, float64 Math.tanh/Math.exp.

export function lstmGates(B: number, H: number, j0: number, j1: number, xp: FloatArray, hh: FloatArray, bx: FloatArray,
  c: FloatArray, h: FloatArray, y: FloatArray, acts: FloatArray | null, cPrev: FloatArray | null, tanhC: FloatArray | null,
  mask: Uint8Array | null): void {
  const GH = 4 * H, f32 = xp instanceof Float32Array;
  for (let b = 0; b < B; b++) {
    if (mask && mask[b] === 0) continue;
    const xo = b * GH, so = b * H;
    for (let j = j0; j < j1; j++) {
      const pi = xp[xo + j] + hh[xo + j] + bx[j], pf = xp[xo + H + j] + hh[xo + H + j] + bx[H + j];
      const pg = xp[xo + 2 * H + j] + hh[xo + 2 * H + j] + bx[2 * H + j], po = xp[xo + 3 * H + j] + hh[xo + 3 * H + j] + bx[3 * H + j];
      const i = f32 ? sigmoidF32(pi) : sigmoid(pi), f = f32 ? sigmoidF32(pf) : sigmoid(pf);
      const g = f32 ? tanhF32(pg) : Math.tanh(pg), o = f32 ? sigmoidF32(po) : sigmoid(po);
      const cp = c[so + j];
      const cn = f * cp + i * g;
      const tc = f32 ? tanhF32(cn) : Math.tanh(cn);
      const hn = o * tc;
      c[so + j] = cn;
      h[so + j] = hn;
      y[so + j] = hn;
      if (acts) {
        acts[xo + j] = i; acts[xo + H + j] = f; acts[xo + 2 * H + j] = g; acts[xo + 3 * H + j] = o;
        cPrev![so + j] = cp;
        tanhC![so + j] = tc;
      }
    }
  }
}

export function lstmGatesBackward(B: number, H: number, j0: number, j1: number, dy: FloatArray, acts: FloatArray,
  cPrev: FloatArray, tanhC: FloatArray, dh: FloatArray, dc: FloatArray, dxp: FloatArray, mask: Uint8Array | null): void {
  const GH = 4 * H;
  for (let b = 0; b < B; b++) {
    if (mask && mask[b] === 0) continue;
    const xo = b * GH, so = b * H;
    for (let j = j0; j < j1; j++) {
      const dhv = dh[so + j] + dy[so + j];
      const i = acts[xo + j], f = acts[xo + H + j], g = acts[xo + 2 * H + j], o = acts[xo + 3 * H + j];
      const tc = tanhC[so + j];
      const dcv = dc[so + j] + dhv * o * (1 - tc * tc);
      dxp[xo + j] = dcv * g * i * (1 - i);
      dxp[xo + H + j] = dcv * cPrev[so + j] * f * (1 - f);
      dxp[xo + 2 * H + j] = dcv * i * (1 - g * g);
      dxp[xo + 3 * H + j] = dhv * tc * o * (1 - o);
      dc[so + j] = dcv * f;
    }
  }
}

export function gruGates(B: number, H: number, j0: number, j1: number, xp: FloatArray, hh: FloatArray, bx: FloatArray,
  bhn: FloatArray, h: FloatArray, y: FloatArray, acts: FloatArray | null, hnSaved: FloatArray | null, mask: Uint8Array | null): void {
  const GH = 3 * H, f32 = xp instanceof Float32Array;
  for (let b = 0; b < B; b++) {
    if (mask && mask[b] === 0) continue;
    const xo = b * GH, so = b * H;
    for (let j = j0; j < j1; j++) {
      const hn = hh[xo + 2 * H + j] + bhn[j];
      const pr = xp[xo + j] + hh[xo + j] + bx[j], pz = xp[xo + H + j] + hh[xo + H + j] + bx[H + j];
      const r = f32 ? sigmoidF32(pr) : sigmoid(pr), z = f32 ? sigmoidF32(pz) : sigmoid(pz);
      const pn = xp[xo + 2 * H + j] + bx[2 * H + j] + r * hn; // PyTorch's n: r multiplies W_hn h + b_hn
      const n = f32 ? tanhF32(pn) : Math.tanh(pn);
      const hv = n + z * (h[so + j] - n); // (1 - z) ⊙ n + z ⊙ h
      h[so + j] = hv;
      y[so + j] = hv;
      if (acts) {
        acts[xo + j] = r; acts[xo + H + j] = z; acts[xo + 2 * H + j] = n;
        hnSaved![so + j] = hn;
      }
    }
  }
}

export function gruGatesBackward(B: number, H: number, j0: number, j1: number, dy: FloatArray, acts: FloatArray,
  hPrev: FloatArray, hnSaved: FloatArray, dh: FloatArray, dxp: FloatArray, dhh: FloatArray, dhDirect: FloatArray,
  mask: Uint8Array | null): void {
  const GH = 3 * H;
  for (let b = 0; b < B; b++) {
    if (mask && mask[b] === 0) continue;
    const xo = b * GH, so = b * H;
    for (let j = j0; j < j1; j++) {
      const dhv = dh[so + j] + dy[so + j];
      const r = acts[xo + j], z = acts[xo + H + j], n = acts[xo + 2 * H + j];
      const dnp = dhv * (1 - z) * (1 - n * n);
      const drp = dnp * hnSaved[so + j] * r * (1 - r);
      const dzp = dhv * (hPrev[so + j] - n) * z * (1 - z);
      dxp[xo + j] = drp; dxp[xo + H + j] = dzp; dxp[xo + 2 * H + j] = dnp;
      dhh[xo + j] = drp; dhh[xo + H + j] = dzp; dhh[xo + 2 * H + j] = dnp * r;
      dhDirect[so + j] = dhv * z; // z ⊙ dh' reaches h without the product
    }
  }
}

/** The reference gate kernels: the loops above over all H columns. */
export const jsGates: GateKernels = {
  lstm: (B, H, xp, hh, bx, c, h, y, acts, cPrev, tanhC, mask) => lstmGates(B, H, 0, H, xp, hh, bx, c, h, y, acts, cPrev, tanhC, mask),
  lstmBackward: (B, H, dy, acts, cPrev, tanhC, dh, dc, dxp, mask) => lstmGatesBackward(B, H, 0, H, dy, acts, cPrev, tanhC, dh, dc, dxp, mask),
  gru: (B, H, xp, hh, bx, bhn, h, y, acts, hnSaved, mask) => gruGates(B, H, 0, H, xp, hh, bx, bhn, h, y, acts, hnSaved, mask),
  gruBackward: (B, H, dy, acts, hPrev, hnSaved, dh, dxp, dhh, dhDirect, mask) => gruGatesBackward(B, H, 0, H, dy, acts, hPrev, hnSaved, dh, dxp, dhh, dhDirect, mask),
};

// The Elman RNN's single activation is cheap beside its product: it stays in JavaScript on every backend.

function rnnGates(B: number, H: number, xp: FloatArray, hh: FloatArray, bx: FloatArray, h: FloatArray, y: FloatArray,
  mask: Uint8Array | null, relu: boolean): void {
  const f32 = xp instanceof Float32Array;
  for (let b = 0; b < B; b++) {
    if (mask && mask[b] === 0) continue;
    const so = b * H;
    for (let j = 0; j < H; j++) {
      const p = xp[so + j] + hh[so + j] + bx[j];
      const hv = relu ? (p > 0 ? p : 0) : f32 ? tanhF32(p) : Math.tanh(p);
      h[so + j] = hv;
      y[so + j] = hv;
    }
  }
}

function rnnGatesBackward(B: number, H: number, dy: FloatArray, y: FloatArray, dh: FloatArray, dxp: FloatArray,
  mask: Uint8Array | null, relu: boolean): void {
  for (let b = 0; b < B; b++) {
    if (mask && mask[b] === 0) continue;
    const so = b * H;
    for (let j = 0; j < H; j++) {
      const dhv = dh[so + j] + dy[so + j];
      const hv = y[so + j];
      dxp[so + j] = relu ? (hv > 0 ? dhv : 0) : dhv * (1 - hv * hv);
    }
  }
}
