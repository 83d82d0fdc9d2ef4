// Generators for the GEMM module's functions. The tile shape and the multiply-add flavour are
// parameters, so the plain-SIMD128 build (4×8, mul + add) and the relaxed-SIMD build (3×12,
// f32x4.relaxed_madd) are the same code. docs/kernels.md explains the layout; in short (BLIS):
//
//   packed A panel  (MR rows × kc):   for kk in 0..kc: MR floats  op(A)[i0 + 0..MR][kk]     (zero-padded rows)
//   packed B panel  (kc × NR cols):   for kk in 0..kc: NR floats  op(B)[kk][j0 + 0..NR]     (zero-padded cols)
//
// The micro-kernel walks one A panel and one B panel together, keeping an MR×NR block of C in
// MR·NR/4 f32x4 accumulators. A "B panel" may also be read in place from a row-major k×n matrix
// (its kk-stride is then ldb instead of NR): that is the small-m path, where packing B would cost
// as much as the product.
//
// Register budget (why the tiles are what they are): V8 on Node 20 gives wasm 15 xmm registers.
// A tile needs MR·NR/4 accumulators + NR/4 B vectors + 1 A broadcast (+1 temporary for mul+add):
//   4×8 plain:   8 + 2 + 1 + 1 = 12     3×12 relaxed: 9 + 3 + 1 = 13
// Bigger tiles ran 30–40% slower: 5×8 and 6×8 measured here (5×8 relaxed counts only 13, so V8
// evidently keeps a register or two for itself), 4×12 and k-unrolled variants in the earlier probes.

import { FunctionBuilder, ModuleBuilder, i32, v128, type ValType } from './assembler.js';
import type { WasmMemory } from './runtime.js';

/** Bytes [0, SCRATCH_BYTES) of linear memory hold the edge-tile scratch block. */
export const SCRATCH_BYTES = 1024;

export interface MicroKernelShape {
  /** MR: rows of C per tile (one A broadcast each). */
  rows: number;
  /** NR: columns of C per tile, a multiple of 4 (one f32x4 per 4 columns). */
  cols: number;
  /** true: f32x4.relaxed_madd (fused on FMA hardware); false: f32x4.mul then f32x4.add. */
  fma: boolean;
}

const I32S = (count: number): ValType[] => Array.from({ length: count }, () => i32);

/**
 * micro(pa, pb, bks, kc, c, ldcBytes, beta, mr, nr, bias): C[mr×nr at c] (beta ? += : =) Apanel · Bpanel,
 * then + bias[0..nr) on every row when bias ≠ 0 (a byte address; 0 is the scratch block, never a bias).
 * The bias is added last, as (C + A·B) + bias, so a product with a bias epilogue on its last depth block is
 * bitwise the product followed by a separate broadcast add: what `linear` saves is that add's pass and array.
 * pa: packed A panel (MR floats per kk); pb: B panel, next kk at pb + bks bytes; kc ≥ 1.
 * A full tile (mr = MR, nr = NR) is stored straight into C; an edge tile goes through the scratch
 * block so that only its valid mr×nr corner is written (zero-padded panel lanes are discarded).
 */
export function emitMicroKernel({ rows: MR, cols: NR, fma }: MicroKernelShape): FunctionBuilder {
  if (NR % 4 !== 0 || NR <= 0 || MR <= 0) throw new RangeError(`emitMicroKernel: cols must be a positive multiple of 4 and rows positive, got ${MR}×${NR}`);
  if (MR * NR * 4 > SCRATCH_BYTES) throw new RangeError(`emitMicroKernel: a ${MR}×${NR} tile does not fit the ${SCRATCH_BYTES}-byte scratch block`);
  const NV = NR / 4;
  const f = new FunctionBuilder(I32S(10), []);
  const [pa, pb, bks, kc, c, ldc, beta, mr, nr, bias] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const acc = Array.from({ length: MR * NV }, () => f.local(v128));
  const bv = Array.from({ length: NV }, () => f.local(v128));
  const av = f.local(v128);

  // The k loop: load the B row segment, then per row broadcast A and multiply-add into the row's accumulators.
  f.doCountDown(kc, () => {
    for (let v = 0; v < NV; v++) f.get(pb).v128Load(16 * v).set(bv[v]);
    for (let r = 0; r < MR; r++) {
      f.get(pa).v128Load32Splat(4 * r).set(av);
      for (let v = 0; v < NV; v++) {
        const x = acc[r * NV + v];
        if (fma) f.get(av).get(bv[v]).get(x).f32x4RelaxedMadd().set(x);
        else f.get(x).get(av).get(bv[v]).f32x4Mul().f32x4Add().set(x);
      }
    }
    f.inc(pa, MR * 4).incBy(pb, bks);
  });

  const row = f.local(i32);
  // The B vectors are dead after the k loop: they hold the bias vectors in the store.
  const storeFull = (addC: boolean, addBias: boolean): void => {
    if (addBias) for (let v = 0; v < NV; v++) f.get(bias).v128Load(16 * v).set(bv[v]);
    f.get(c).set(row);
    for (let r = 0; r < MR; r++) {
      for (let v = 0; v < NV; v++) {
        f.get(row);
        if (addC) f.get(row).v128Load(16 * v).get(acc[r * NV + v]).f32x4Add();
        else f.get(acc[r * NV + v]);
        if (addBias) f.get(bv[v]).f32x4Add();
        f.v128Store(16 * v);
      }
      if (r < MR - 1) f.incBy(row, ldc);
    }
  };

  const i = f.local(i32), j = f.local(i32), src = f.local(i32), addr = f.local(i32);
  const storeEdge = (addC: boolean, addBias: boolean): void => {
    f.get(c).set(row);
    f.i32Const(0).set(src); // scratch row i starts at i·NR·4
    f.forLt(i, 0, mr, 1, () => {
      f.forLt(j, 0, nr, 1, () => {
        f.get(row).get(j).i32Const(2).i32Shl().i32Add().tee(addr);
        f.get(src).get(j).i32Const(2).i32Shl().i32Add().f32Load(0);
        if (addC) f.get(addr).f32Load(0).f32Add();
        if (addBias) f.get(bias).get(j).i32Const(2).i32Shl().i32Add().f32Load(0).f32Add();
        f.f32Store(0);
      });
      f.incBy(row, ldc).inc(src, NR * 4);
    });
  };

  const byFlags = (store: (addC: boolean, addBias: boolean) => void): void => {
    f.get(bias).if(
      () => { f.get(beta).if(() => store(true, true), () => store(false, true)); },
      () => { f.get(beta).if(() => store(true, false), () => store(false, false)); },
    );
  };
  f.get(mr).i32Const(MR).i32Eq().get(nr).i32Const(NR).i32Eq().i32And().if(
    () => byFlags(storeFull),
    () => {
      for (let r = 0; r < MR; r++) for (let v = 0; v < NV; v++) f.i32Const(0).get(acc[r * NV + v]).v128Store((r * NR + 4 * v) * 4);
      byFlags(storeEdge);
    },
  );
  return f;
}

/**
 * macro(mc, nc, kc, pa, pb, bks, bps, c, ldcBytes, beta, bias): one mc×nc block of C from a packed A
 * block (mc rows, panels of MR, each kc·MR floats) and a B block (panels of NR columns, panel p at
 * pb + p·bps bytes, kk-stride bks bytes); bias ≠ 0: the byte address of the block's nc bias floats. Loop order jr outer, ir inner: the B panel (kc·NR floats,
 * 8–12 KiB for kc = 256) stays in L1 while the A block streams from L2.
 */
export function emitMacroKernel(MR: number, NR: number, microIndex: number): FunctionBuilder {
  const f = new FunctionBuilder(I32S(11), []);
  const [mc, nc, kc, pa, pb, bks, bps, c, ldc, beta, bias] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const j = f.local(i32), i = f.local(i32), nr = f.local(i32), mr = f.local(i32), biasJ = f.local(i32);
  const paI = f.local(i32), cI = f.local(i32), aPanelBytes = f.local(i32), cPanelBytes = f.local(i32), rest = f.local(i32);
  f.get(kc).i32Const(MR * 4).i32Mul().set(aPanelBytes);
  f.get(ldc).i32Const(MR).i32Mul().set(cPanelBytes);
  f.forLt(j, 0, nc, NR, () => {
    // nr = min(NR, nc - j)
    f.get(nc).get(j).i32Sub().set(rest);
    f.i32Const(NR).get(rest).get(rest).i32Const(NR).i32GeS().select().set(nr);
    f.get(pa).set(paI).get(c).set(cI);
    // biasJ = bias ? bias + 4j : 0
    f.get(bias).get(j).i32Const(2).i32Shl().i32Add().i32Const(0).get(bias).select().set(biasJ);
    f.forLt(i, 0, mc, MR, () => {
      f.get(mc).get(i).i32Sub().set(rest);
      f.i32Const(MR).get(rest).get(rest).i32Const(MR).i32GeS().select().set(mr);
      f.get(paI).get(pb).get(bks).get(kc).get(cI).get(ldc).get(beta).get(mr).get(nr).get(biasJ).call(microIndex);
      f.incBy(paI, aPanelBytes).incBy(cI, cPanelBytes);
    });
    f.incBy(pb, bps).inc(c, NR * 4);
  });
  return f;
}

/**
 * pack(src, xs, ks, count, kc, dst): panels of P along x. Element (x, kk) of the source is at
 * src + x·xs + kk·ks bytes; it goes to dst + ((x/P)·kc·P + kk·P + x%P)·4, and the lanes past
 * `count` in the last panel are zero. One function packs A (x = row i, P = MR) and B (x = column j,
 * P = NR) for both transposes: only the strides differ. kc ≥ 1.
 *   x contiguous (xs = 4, e.g. plain B, Aᵀ), full panel: P floats copied per kk (f32x4 when P%4 = 0);
 *   kk contiguous (ks = 4, e.g. Bᵀ, plain A), full panel, P%4 = 0: 4×4 blocks transposed in registers;
 *   otherwise (edge panels, A panels of 3 rows): one x at a time down kk.
 */
export function emitPack(P: number): FunctionBuilder {
  const f = new FunctionBuilder(I32S(6), []);
  const [src, xs, ks, count, kc, dst] = [0, 1, 2, 3, 4, 5];
  const x0 = f.local(i32), valid = f.local(i32), s = f.local(i32), kk = f.local(i32);
  f.forLt(x0, 0, count, P, () => {
    f.get(count).get(x0).i32Sub().set(valid);
    f.i32Const(P).get(valid).get(valid).i32Const(P).i32GeS().select().set(valid);
    f.get(src).get(x0).get(xs).i32Mul().i32Add().set(s);
    f.get(xs).i32Const(4).i32Eq().get(valid).i32Const(P).i32Eq().i32And().if(
      () => {
        f.get(kc).set(kk);
        f.doCountDown(kk, () => {
          if (P % 4 === 0) for (let v = 0; v < P / 4; v++) f.get(dst).get(s).v128Load(16 * v).v128Store(16 * v);
          else for (let t = 0; t < P; t++) f.get(dst).get(s).f32Load(4 * t).f32Store(4 * t);
          f.incBy(s, ks).inc(dst, P * 4);
        });
      },
      () => {
        if (P % 4 === 0) {
          f.get(ks).i32Const(4).i32Eq().get(valid).i32Const(P).i32Eq().i32And().if(
            () => emitTransposingPanel(f, P, { s, xs, kc, dst }),
            () => emitScalarPanel(f, P, { src, xs, ks, kc, dst, x0, valid, s }),
          );
        } else {
          emitScalarPanel(f, P, { src, xs, ks, kc, dst, x0, valid, s });
        }
      },
    );
  });
  return f;
}

/**
 * One full panel whose source runs along kk (ks = 4) and strides along x — Bᵀ, or a plain A when
 * P = 4: a transpose. Blocks of 4 x × 4 kk are loaded as four f32x4 rows, transposed with eight
 * shuffles (which V8 lowers to unpck/movlhps-style instructions) and stored as four panel rows.
 * About 3x faster than moving one float at a time, which matters where packing is not amortised:
 * A·Bᵀ with a small m (the recurrent product's backward), where B is packed for only m rows of work.
 */
function emitTransposingPanel(f: FunctionBuilder, P: number, r: { s: number; xs: number; kc: number; dst: number }): void {
  const rows = [f.local(i32), f.local(i32), f.local(i32), f.local(i32)];
  const v = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  const t = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  const d = f.local(i32), blocks = f.local(i32), rem = f.local(i32);
  const rowBytes = P * 4;
  for (let g = 0; g < P / 4; g++) {
    // rows[q] = s + (4g + q)·xs: the source of panel lane 4g + q.
    f.get(r.s).get(r.xs).i32Const(4 * g).i32Mul().i32Add().set(rows[0]);
    for (let q = 1; q < 4; q++) f.get(rows[q - 1]).get(r.xs).i32Add().set(rows[q]);
    f.get(r.dst).i32Const(16 * g).i32Add().set(d);
    f.get(r.kc).i32Const(2).i32ShrU().tee(blocks).if(() => {
      f.doCountDown(blocks, () => {
        for (let q = 0; q < 4; q++) f.get(rows[q]).v128Load(0).set(v[q]);
        f.get(v[0]).get(v[1]).f32x4Shuffle([0, 4, 1, 5]).set(t[0]); // a0 b0 a1 b1
        f.get(v[0]).get(v[1]).f32x4Shuffle([2, 6, 3, 7]).set(t[1]); // a2 b2 a3 b3
        f.get(v[2]).get(v[3]).f32x4Shuffle([0, 4, 1, 5]).set(t[2]); // c0 d0 c1 d1
        f.get(v[2]).get(v[3]).f32x4Shuffle([2, 6, 3, 7]).set(t[3]); // c2 d2 c3 d3
        f.get(d).get(t[0]).get(t[2]).f32x4Shuffle([0, 1, 4, 5]).v128Store(0); // a0 b0 c0 d0
        f.get(d).get(t[0]).get(t[2]).f32x4Shuffle([2, 3, 6, 7]).v128Store(rowBytes);
        f.get(d).get(t[1]).get(t[3]).f32x4Shuffle([0, 1, 4, 5]).v128Store(2 * rowBytes);
        f.get(d).get(t[1]).get(t[3]).f32x4Shuffle([2, 3, 6, 7]).v128Store(3 * rowBytes);
        for (let q = 0; q < 4; q++) f.inc(rows[q], 16);
        f.inc(d, 4 * rowBytes);
      });
    });
    // The kc mod 4 trailing kk, one float at a time.
    f.get(r.kc).i32Const(3).i32And().tee(rem).if(() => {
      f.doCountDown(rem, () => {
        for (let q = 0; q < 4; q++) f.get(d).get(rows[q]).f32Load(0).f32Store(4 * q).inc(rows[q], 4);
        f.inc(d, rowBytes);
      });
    });
  }
  f.get(r.kc).i32Const(rowBytes).i32Mul().get(r.dst).i32Add().set(r.dst);
}

/** Any panel, one x (panel lane) at a time down kk; lanes past `valid` are zero. */
function emitScalarPanel(
  f: FunctionBuilder, P: number,
  r: { src: number; xs: number; ks: number; kc: number; dst: number; x0: number; valid: number; s: number },
): void {
  const { src, xs, ks, kc, dst, x0, valid, s } = r;
  const xx = f.local(i32), d = f.local(i32), kk = f.local(i32);
  f.forLt(xx, 0, { value: P }, 1, () => {
    f.get(dst).get(xx).i32Const(2).i32Shl().i32Add().set(d);
    f.get(kc).set(kk);
    f.get(xx).get(valid).i32LtS().if(
      () => f.doCountDown(kk, () => { f.get(d).get(s).f32Load(0).f32Store(0).incBy(s, ks).inc(d, P * 4); }),
      () => f.doCountDown(kk, () => { f.get(d).f32Const(0).f32Store(0).inc(d, P * 4); }),
    );
    // s walked down kk of column xx; move it to the start of column xx+1.
    f.get(src).get(x0).get(xx).i32Const(1).i32Add().i32Add().get(xs).i32Mul().i32Add().set(s);
  });
  f.get(kc).i32Const(P * 4).i32Mul().get(dst).i32Add().set(dst);
}

export interface GemmModuleExports {
  memory: WasmMemory;
  macro(mc: number, nc: number, kc: number, pa: number, pb: number, bks: number, bps: number, c: number, ldcBytes: number, beta: number, bias: number): void;
  packA(src: number, xs: number, ks: number, count: number, kc: number, dst: number): void;
  packB(src: number, xs: number, ks: number, count: number, kc: number, dst: number): void;
}

/**
 * The whole GEMM module for one tile shape: exports macro, packA, packB, and its own memory; or, with
 * heapMaxPages > 0, imports env.memory (a shared memory of at most that many pages: the thread heap).
 */
export function buildGemmModule(shape: MicroKernelShape, heapMaxPages = 0): Uint8Array {
  const mod = new ModuleBuilder();
  const micro = mod.addFunction(null, emitMicroKernel(shape));
  mod.addFunction('macro', emitMacroKernel(shape.rows, shape.cols, micro));
  mod.addFunction('packA', emitPack(shape.rows));
  mod.addFunction('packB', emitPack(shape.cols));
  if (heapMaxPages > 0) mod.importSharedMemory('env', 'memory', 1, heapMaxPages);
  else mod.setMemory(1);
  return mod.encode();
}
