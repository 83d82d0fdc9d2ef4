// A tiny WebAssembly binary emitter: just enough of the format (types, functions, one memory,
// exports, code) and of the instruction set (i32 arithmetic, structured control flow, f32 and
// SIMD128 loads/stores/arithmetic, relaxed SIMD's fused multiply-add) to write the GEMM kernels
// from TypeScript. There is no wasm toolchain in this project; generating the bytes at run time
// keeps the kernels parametric (tile shape, FMA or not) with no build step and no generated files.
//
// Format reference: the WebAssembly core spec, binary format chapter, plus the SIMD (0xFD prefix)
// and relaxed-SIMD opcode tables. Every module built here is checked with WebAssembly.validate.

export const i32 = 0x7f;
export const f32 = 0x7d;
export const v128 = 0x7b;
export type ValType = typeof i32 | typeof f32 | typeof v128;

/** Unsigned LEB128, used for counts, indices, sizes, alignments, offsets and SIMD opcodes. */
export function uleb(out: number[], value: number): void {
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
}

/** Signed LEB128 for i32.const immediates. */
export function sleb(out: number[], value: number): void {
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return;
  }
}

function utf8Name(out: number[], name: string): void {
  const bytes = new TextEncoder().encode(name);
  uleb(out, bytes.length);
  for (const b of bytes) out.push(b);
}

// SIMD opcodes follow the 0xFD prefix as a LEB128 u32 (so 0x105 is two bytes: 0x85 0x02).
const SIMD = {
  load: 0x00,
  load32Splat: 0x09,
  store: 0x0b,
  shuffle: 0x0d,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  f32x4RelaxedMadd: 0x105, // relaxed-simd: a·b + c with one or two roundings (FMA on x86 with FMA3)
} as const;

/**
 * Emits one function body. Methods append instructions and return `this`, so code reads in stack
 * order: `f.get(x).get(y).i32Add().set(z)` is z = x + y.
 * Control flow helpers track nothing: `br`/`brIf` depths are written by the caller, counted outwards
 * from the innermost enclosing block/loop/if (0).
 */
export class FunctionBuilder {
  readonly code: number[] = [];
  private readonly localTypes: ValType[] = [];

  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[]) {}

  /** Index of parameter `i` (parameters come first in the local index space). */
  param(i: number): number {
    if (i < 0 || i >= this.params.length) throw new RangeError(`FunctionBuilder.param: no parameter ${i}`);
    return i;
  }

  /** Declares a new local (zero-initialised on entry) and returns its index. */
  local(type: ValType): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }

  private op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }
  private memarg(alignLog2: number, offset: number): this {
    uleb(this.code, alignLog2);
    uleb(this.code, offset);
    return this;
  }
  private simd(opcode: number): this {
    this.code.push(0xfd);
    uleb(this.code, opcode);
    return this;
  }

  // Variables and constants.
  get(local: number): this { this.op(0x20); uleb(this.code, local); return this; }
  set(local: number): this { this.op(0x21); uleb(this.code, local); return this; }
  tee(local: number): this { this.op(0x22); uleb(this.code, local); return this; }
  i32Const(v: number): this { this.op(0x41); sleb(this.code, v); return this; }
  f32Const(v: number): this {
    this.op(0x43);
    const bytes = new Uint8Array(new Float32Array([v]).buffer);
    for (const b of bytes) this.code.push(b);
    return this;
  }

  // i32 arithmetic and comparisons (comparisons are signed: every size and pointer here is < 2^31).
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Mul(): this { return this.op(0x6c); }
  i32Shl(): this { return this.op(0x74); }
  i32Eqz(): this { return this.op(0x45); }
  i32Eq(): this { return this.op(0x46); }
  i32Ne(): this { return this.op(0x47); }
  i32LtS(): this { return this.op(0x48); }
  i32GtS(): this { return this.op(0x4a); }
  i32GeS(): this { return this.op(0x4e); }
  i32And(): this { return this.op(0x71); }
  i32ShrU(): this { return this.op(0x76); }
  select(): this { return this.op(0x1b); }

  /** local += delta (delta a constant). */
  inc(local: number, delta: number): this { return this.get(local).i32Const(delta).i32Add().set(local); }
  /** local += other local. */
  incBy(local: number, by: number): this { return this.get(local).get(by).i32Add().set(local); }

  // Memory. Offsets are immediate byte offsets added to the i32 address on the stack.
  f32Load(offset = 0): this { return this.op(0x2a).memarg(2, offset); }
  f32Store(offset = 0): this { return this.op(0x38).memarg(2, offset); }
  f32Add(): this { return this.op(0x92); }
  v128Load(offset = 0): this { return this.simd(SIMD.load).memarg(4, offset); }
  v128Store(offset = 0): this { return this.simd(SIMD.store).memarg(4, offset); }
  /** Loads one f32 and broadcasts it to all four lanes. */
  v128Load32Splat(offset = 0): this { return this.simd(SIMD.load32Splat).memarg(2, offset); }
  f32x4Add(): this { return this.simd(SIMD.f32x4Add); }
  f32x4Mul(): this { return this.simd(SIMD.f32x4Mul); }
  /**
   * i8x16.shuffle expressed in f32 lanes: lane L of the result is lane lanes[L] of the
   * concatenation (a, b) of the two operands (0–3 from a, 4–7 from b).
   */
  f32x4Shuffle(lanes: readonly [number, number, number, number]): this {
    this.simd(SIMD.shuffle);
    for (const l of lanes) for (let byte = 0; byte < 4; byte++) this.code.push(4 * l + byte);
    return this;
  }
  /** Stack: a, b, c → a·b + c. */
  f32x4RelaxedMadd(): this { return this.simd(SIMD.f32x4RelaxedMadd); }

  // Control flow. Block type 0x40 = no result.
  block(body: () => void): this { this.op(0x02, 0x40); body(); return this.op(0x0b); }
  loop(body: () => void): this { this.op(0x03, 0x40); body(); return this.op(0x0b); }
  /** Pops an i32 condition. */
  if(then: () => void, otherwise?: () => void): this {
    this.op(0x04, 0x40);
    then();
    if (otherwise) { this.op(0x05); otherwise(); }
    return this.op(0x0b);
  }
  br(depth: number): this { this.op(0x0c); uleb(this.code, depth); return this; }
  brIf(depth: number): this { this.op(0x0d); uleb(this.code, depth); return this; }
  call(funcIndex: number): this { this.op(0x10); uleb(this.code, funcIndex); return this; }

  /**
   * for (counter = from; counter < limit; counter += step) body — `limit` is a local (read at each
   * test) or `{ value }`, a constant.
   * Emitted as block { loop { br_if exit (counter >= limit); body; counter += step; br loop } }, so a
   * `br`/`brIf` inside `body` at depth 1 leaves the loop and at depth 0 skips to the next test.
   */
  forLt(counter: number, from: number, limit: number | { value: number }, step: number, body: () => void): this {
    this.i32Const(from).set(counter);
    return this.block(() => this.loop(() => {
      this.get(counter);
      if (typeof limit === 'number') this.get(limit);
      else this.i32Const(limit.value);
      this.i32GeS().brIf(1);
      body();
      this.inc(counter, step).br(0);
    }));
  }

  /** do { body } while (--counter !== 0): the tightest loop form; the caller guarantees counter ≥ 1. */
  doCountDown(counter: number, body: () => void): this {
    return this.loop(() => {
      body();
      this.get(counter).i32Const(1).i32Sub().tee(counter).brIf(0);
    });
  }

  /** The function's code-section entry: locals (run-length grouped) then the body and `end`. */
  encodeBody(): number[] {
    const groups: [number, ValType][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const body: number[] = [];
    uleb(body, groups.length);
    for (const [count, type] of groups) { uleb(body, count); body.push(type); }
    for (const b of this.code) body.push(b);
    body.push(0x0b);
    const out: number[] = [];
    uleb(out, body.length);
    for (const b of body) out.push(b);
    return out;
  }
}

interface FunctionEntry { name: string | null; fn: FunctionBuilder }

/** Collects functions and one memory (its own, or an imported shared one), and writes the module's bytes. */
export class ModuleBuilder {
  private readonly functions: FunctionEntry[] = [];
  private memory: { minPages: number; exportName: string } | null = null;
  private importedMemory: { module: string; name: string; minPages: number; maxPages: number } | null = null;

  /** Adds a function and returns its index (for `call`). `exportName` null keeps it internal. */
  addFunction(exportName: string | null, fn: FunctionBuilder): number {
    this.functions.push({ name: exportName, fn });
    return this.functions.length - 1;
  }

  /** Declares the module's own (non-shared, growable) memory, exported so the host can read and grow it. */
  setMemory(minPages: number, exportName = 'memory'): void {
    this.memory = { minPages, exportName };
    this.importedMemory = null;
  }

  /** Imports a shared memory as memory 0 instead (module.name; the host passes a WebAssembly.Memory with shared: true). */
  importSharedMemory(module: string, name: string, minPages: number, maxPages: number): void {
    this.importedMemory = { module, name, minPages, maxPages };
    this.memory = null;
  }

  encode(): Uint8Array {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]; // "\0asm", version 1
    const section = (id: number, payload: number[]): void => {
      out.push(id);
      uleb(out, payload.length);
      for (const b of payload) out.push(b);
    };

    // Type section: one signature per function (duplicates are legal and keep this simple).
    const types: number[] = [];
    uleb(types, this.functions.length);
    for (const { fn } of this.functions) {
      types.push(0x60);
      uleb(types, fn.params.length);
      types.push(...fn.params);
      uleb(types, fn.results.length);
      types.push(...fn.results);
    }
    section(1, types);

    if (this.importedMemory) {
      const { module, name, minPages, maxPages } = this.importedMemory;
      const imports: number[] = [1];
      utf8Name(imports, module);
      utf8Name(imports, name);
      imports.push(0x02, 0x03); // a memory; limits: shared, with a maximum
      uleb(imports, minPages);
      uleb(imports, maxPages);
      section(2, imports);
    }

    const funcs: number[] = [];
    uleb(funcs, this.functions.length);
    this.functions.forEach((_, i) => uleb(funcs, i));
    section(3, funcs);

    if (this.memory) {
      const mem: number[] = [1, 0x00]; // one memory, limits with a minimum only
      uleb(mem, this.memory.minPages);
      section(5, mem);
    }

    const exports: number[] = [];
    const exported = this.functions.map((f, i) => [f.name, i] as const).filter(([name]) => name !== null);
    uleb(exports, exported.length + (this.memory ? 1 : 0));
    for (const [name, index] of exported) {
      utf8Name(exports, name as string);
      exports.push(0x00); // function
      uleb(exports, index);
    }
    if (this.memory) {
      utf8Name(exports, this.memory.exportName);
      exports.push(0x02, 0x00); // memory 0
    }
    section(7, exports);

    const code: number[] = [];
    uleb(code, this.functions.length);
    for (const { fn } of this.functions) for (const b of fn.encodeBody()) code.push(b);
    section(10, code);

    return new Uint8Array(out);
  }
}
