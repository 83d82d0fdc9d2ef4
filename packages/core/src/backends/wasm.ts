import { ReferenceBackend } from './reference.js';
import { backend, registerBackend, setDefaultBackendChooser } from './registry.js';
import { createWasmGemm, wasmSimdSupported, type WasmGemm } from '../kernels/wasm/index.js';
import { claimThreadHeap } from '../kernels/wasm/heap.js';
import { type FloatArray, type PinnedGemm } from '../kernels/gemm-reference.js';
import { createSimdGates } from '../fused/recurrent-simd.js';
import type { GateKernels } from '../fused/recurrent-kernel.js';
import { createSimdSoftmaxCE } from '../fused/softmax-ce-simd.js';
import type { SoftmaxCEKernels } from '../fused/softmax-ce.js';

/**
 * The default backend: the reference backend with its matrix products (90%+ of a language model's
 * time) run by the WebAssembly SIMD GEMM (relaxed SIMD/FMA where the runtime has it). float64 products,
 * used only by gradient checks, stay on the reference kernel.
 */
export class WasmBackend extends ReferenceBackend {
  override readonly name: string;

  constructor(private readonly kernel: WasmGemm) {
    super();
    this.name = kernel.relaxed ? 'wasm-relaxed' : 'wasm';
  }

  get relaxed(): boolean {
    return this.kernel.relaxed;
  }

  // The fused recurrent kernels' gate loops in WebAssembly SIMD too (fused/recurrent-simd.ts), made on first use.
  private simdGates: GateKernels | null = null;
  protected override recurrentGates(): GateKernels {
    return (this.simdGates ??= createSimdGates() ?? super.recurrentGates());
  }

  // Softmax cross-entropy's row passes with a vector exp (fused/softmax-ce-simd.ts), made on first use.
  private simdSoftmaxCE: SoftmaxCEKernels | null = null;
  protected override softmaxCEKernels(): SoftmaxCEKernels {
    return (this.simdSoftmaxCE ??= createSimdSoftmaxCE() ?? super.softmaxCEKernels());
  }

  protected override gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: FloatArray, aOff: number, lda: number, b: FloatArray, bOff: number, ldb: number,
    c: FloatArray, cOff: number, ldc: number, accumulate = false, bias: FloatArray | null = null): void {
    if (a instanceof Float32Array && b instanceof Float32Array && c instanceof Float32Array && (bias === null || bias instanceof Float32Array)) {
      this.kernel.gemm(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate, bias);
    } else {
      super.gemm(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate, bias);
    }
  }

  // W_hh packed once per sequence in the kernel's memory, not copied in at every time step (kernels/wasm, pinB).
  protected override pinB(transB: boolean, k: number, n: number, b: FloatArray, bOff: number, ldb: number): PinnedGemm {
    return b instanceof Float32Array ? this.kernel.pinB(transB, k, n, b, bOff, ldb) : super.pinB(transB, k, n, b, bOff, ldb);
  }
}

function makeWasm(relaxed: boolean | 'auto'): () => WasmBackend {
  return () => {
    // The first wasm backend of a thread runs in the thread's heap, where the storage pool puts its arrays.
    const kernel = createWasmGemm({ relaxed, heap: wasmSimdSupported() ? claimThreadHeap() : null });
    if (!kernel) throw new Error('backend: this runtime has no WebAssembly SIMD; use the reference backend');
    return new WasmBackend(kernel);
  };
}

registerBackend('wasm', makeWasm('auto'));
registerBackend('wasm-simd', makeWasm(false));

// The default: WebAssembly SIMD where available, the reference backend otherwise.
setDefaultBackendChooser(() => {
  try {
    return backend('wasm');
  } catch {
    return backend('reference');
  }
});
