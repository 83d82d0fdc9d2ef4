import { activePool } from './storage-pool.js';

/** Element types. float32 is the working type; float64 exists for gradient checks; int32 holds indices. */
export type DType = 'float32' | 'float64' | 'int32';
export type FloatArray = Float32Array | Float64Array;
export type TypedArray = Float32Array | Float64Array | Int32Array;

export const arrayType = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
} as const;

/** A zero-filled host array: every kernel's output comes from here (drawn from the active StoragePool, if any). */
export function allocArray(dtype: DType, size: number): TypedArray {
  const pool = activePool(size);
  return pool ? pool.take(dtype, size) : new arrayType[dtype](size);
}

export function isFloat(dtype: DType): boolean {
  return dtype !== 'int32';
}
