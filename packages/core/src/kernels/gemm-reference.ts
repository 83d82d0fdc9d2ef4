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
  for (const [name, v] of [['m', m], ['n', n], ['k', k], ['aOffset', aOffset], ['bOffset', bOffset], ['cOffset', cOffset]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${fn}: argument '${name}' must be a non-negative integer, got ${v}`);
  }
  // Stored shapes: A is m×k (k×m when transA), B is k×n (n×k when transB), C is m×n.
  checkOperand(fn, 'a', 'lda', a, aOffset, lda, transA ? k : m, transA ? m : k);
  checkOperand(fn, 'b', 'ldb', b, bOffset, ldb, transB ? n : k, transB ? k : n);
  checkOperand(fn, 'c', 'ldc', c, cOffset, ldc, m, n);
}

function checkOperand(fn: string, name: string, ldName: string, x: ArrayLike<number>, offset: number, ld: number, rows: number, cols: number): void {
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
