// The reference matrix product: plain TypeScript, obviously correct, for float32 and float64.
// Every faster kernel (kernels/wasm) is tested against it, and float64 gradient checks run through it.

export type FloatArray = Float32Array | Float64Array;

/**
 * Checks the arguments of a GEMM call and throws a RangeError naming the function and the argument.
 * Shared by every kernel so they all accept exactly the same calls. The last element an operand's
 * view touches must lie inside the array: rows × ld elements are not required, only (rows-1)·ld + cols.
 */
export function checkGemmArgs(
  fn: string,
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: ArrayLike<number>, aOffset: number, lda: number,
  b: ArrayLike<number>, bOffset: number, ldb: number,
  c: ArrayLike<number>, cOffset: number, ldc: number,
): void {
  checkCounts(fn, { m, n, k, aOffset, bOffset, cOffset });
  // Stored shapes: A is m×k (k×m when transA), B is k×n (n×k when transB), C is m×n.
  checkOperand(fn, 'a', 'lda', a, aOffset, lda, transA ? k : m, transA ? m : k);
  checkOperand(fn, 'b', 'ldb', b, bOffset, ldb, transB ? n : k, transB ? k : n);
  checkOperand(fn, 'c', 'ldc', c, cOffset, ldc, m, n);
}

/** Throws a RangeError naming the first value that is not a non-negative integer (sizes and offsets). */
export function checkCounts(fn: string, values: Readonly<Record<string, number>>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${fn}: argument '${name}' must be a non-negative integer, got ${v}`);
  }
}

/** One operand's view (rows × cols at offset, leading dimension ld) must fit in x; the error names the argument. */
export function checkOperand(fn: string, name: string, ldName: string, x: ArrayLike<number>, offset: number, ld: number, rows: number, cols: number): void {
  if (!Number.isInteger(ld) || ld < Math.max(1, cols)) {
    throw new RangeError(`${fn}: argument '${ldName}' must be an integer ≥ ${Math.max(1, cols)} (the stored row length), got ${ld}`);
  }
  if (rows === 0 || cols === 0) return;
  const last = offset + (rows - 1) * ld + cols;
  if (last > x.length) {
    throw new RangeError(`${fn}: argument '${name}' is too short: a ${rows}×${cols} view at offset ${offset} with leading dimension ${ld} needs ${last} elements, it has ${x.length}`);
  }
}

/**
 * C[m×n] (+)= op(A)[m×k] · op(B)[k×n], row-major with leading dimensions.
 * op(A) = A (A stored m×k, lda ≥ k) or Aᵀ when transA (A stored k×m, lda ≥ m); same for B
 * (B stored k×n, or n×k when transB). accumulate=false overwrites C; true adds into C.
 * Offsets let batched products address slices of one array.
 */
export function gemmReference(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: FloatArray, aOffset: number, lda: number,
  b: FloatArray, bOffset: number, ldb: number,
  c: FloatArray, cOffset: number, ldc: number,
  accumulate: boolean,
): void {
  checkGemmArgs('gemmReference', transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc);
  // Element (i, p) of op(A) is a[aOffset + i·sai + p·sap]; likewise for op(B).
  const sai = transA ? 1 : lda, sap = transA ? lda : 1;
  for (let i = 0; i < m; i++) {
    const ci = cOffset + i * ldc;
    const ai = aOffset + i * sai;
    if (!transB) {
      // i-k-j: the inner loop walks a row of B and a row of C contiguously.
      if (!accumulate) c.fill(0, ci, ci + n);
      for (let p = 0; p < k; p++) {
        const aip = a[ai + p * sap];
        const bp = bOffset + p * ldb;
        for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
      }
    } else {
      // Bᵀ: row j of op(B)ᵀ is row j of B, so each C element is a contiguous dot product.
      for (let j = 0; j < n; j++) {
        const bj = bOffset + j * ldb;
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ai + p * sap] * b[bj + p];
        c[ci + j] = accumulate ? c[ci + j] + s : s;
      }
    }
  }
}

/**
 * A right operand B held across many products C = op(A)·op(B): the per-step h·W_hhᵀ and dG·W_hh of the fused
 * recurrent kernels, T products against one weight matrix. The WebAssembly kernel (WasmGemm.pinB) packs op(B)
 * into its own memory once instead of copying B in at every call; pinReference is the plain version.
 * While pinned, the caller must not change B: the products may read a copy made when it was pinned.
 * Every method of a released handle throws.
 */
export interface PinnedGemm {
  readonly transB: boolean;
  /** op(B) is k×n. */
  readonly k: number;
  readonly n: number;
  readonly released: boolean;
  /** C[m×n] (+)= op(A)[m×k] · op(B): gemm's contract with the pinned B. */
  gemm(transA: boolean, m: number, a: FloatArray, aOffset: number, lda: number,
    c: FloatArray, cOffset: number, ldc: number, accumulate: boolean): void;
  /** Ends the pin (frees what it holds). */
  release(): void;
}

/**
 * PinnedGemm on gemmReference: Bᵀ is transposed once into a private copy, so that every product runs the
 * i-k-j loop over a plain B (what the recurrent kernel did by hand before pinning); a plain B is read in place
 * at every call, so there it sees changes to B (which the contract forbids anyway).
 */
export function pinReference(transB: boolean, k: number, n: number, b: FloatArray, bOffset: number, ldb: number): PinnedGemm {
  const fn = 'pinReference';
  checkCounts(fn, { k, n, bOffset });
  checkOperand(fn, 'b', 'ldb', b, bOffset, ldb, transB ? n : k, transB ? k : n);
  let bx = b, bxOffset = bOffset, bxLd = ldb;
  if (transB && k > 0 && n > 0) {
    // B is n×k: its transpose k×n, row p = column p of B.
    bx = new (b instanceof Float32Array ? Float32Array : Float64Array)(k * n);
    for (let j = 0; j < n; j++) {
      const o = bOffset + j * ldb;
      for (let p = 0; p < k; p++) bx[p * n + j] = b[o + p];
    }
    bxOffset = 0;
    bxLd = n;
  } else if (transB) {
    bxLd = Math.max(1, n);
  }
  let released = false;
  const live = (what: string): void => {
    if (released) throw new Error(`PinnedGemm.${what}: this pinned operand (op(B) ${k}×${n}) was released`);
  };
  return {
    transB, k, n,
    get released() { return released; },
    gemm(transA, m, a, aOffset, lda, c, cOffset, ldc, accumulate) {
      live('gemm');
      gemmReference(transA, false, m, n, k, a, aOffset, lda, bx, bxOffset, bxLd, c, cOffset, ldc, accumulate);
    },
    release() {
      live('release');
      released = true;
      bx = new Float32Array(0);
    },
  };
}

/** c[i, j] += bias[j] on every row of an m×n view: the bias of a product, added after it as a separate add would. */
export function addBiasRows(c: FloatArray, cOffset: number, ldc: number, m: number, n: number, bias: ArrayLike<number>): void {
  for (let i = 0; i < m; i++) {
    const row = cOffset + i * ldc;
    for (let j = 0; j < n; j++) c[row + j] += bias[j];
  }
}
