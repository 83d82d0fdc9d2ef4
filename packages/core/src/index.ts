/**
 * @loom/core: tensors, reverse-mode autograd, kernels, modules, optimizers, checkpoints.
 * Read in this order: dtype/shape → backend (the kernel interface) → backends/ → tensor (autograd)
 * → ops (the primitives) → functional (composed ops) → nn → optim → checkpoint.
 */
export * from './dtype.js';
export { StoragePool } from './storage-pool.js';
export * from './errors.js';
export * from './shape.js';
export * from './random.js';
export type { Backend, UnaryOp, BinaryOp, ReduceOp } from './backend.js';
export { ReferenceBackend } from './backends/reference.js';
export { WasmBackend } from './backends/wasm.js';
export { backend, backendInfo, backendNames, getBackend, setBackend, registerBackend } from './backends/registry.js';
export type { BackendInfo } from './backends/registry.js';
export { Tensor, noGrad, isGradEnabled, withoutGradSinks, tensor, full, zeros, ones, arange, fromStorage, fromFunction } from './tensor.js';
export type { GradNode, TensorOptions } from './tensor.js';
export * from './ops.js';
export * from './functional.js';
export { Module, Parameter } from './nn/module.js';
export { Linear, Embedding } from './nn/layers.js';
export type { LayerOptions } from './nn/layers.js';
export * as init from './nn/init.js';
export { gemmReference } from './kernels/gemm-reference.js';
export { createWasmGemm, wasmSimdSupported } from './kernels/wasm/index.js';
export * from './flat.js';
export * from './checkpoint.js';
export * from './optim/index.js';
export {
  recurrentSequence, RECURRENT_KINDS,
  type RecurrentKind, type RecurrentSequenceInputs, type RecurrentSequenceOptions, type RecurrentSequenceResult,
} from './fused/recurrent.js';
