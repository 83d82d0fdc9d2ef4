/*
 * Storage: a small mutable box around an immutable TF.js tensor.
 *
 * TF.js tensors are immutable, but a few kernels of the Loom interface write in place (addInPlace, fill,
 * sliceAddInto, scatterAddRowsInto, write): they replace the box's tensor and dispose the old one. Tensors
 * sharing a box (a reshape, a detach) see the new value, as they would share a host array.
 *
 * TF.js frees tensor memory only on dispose(), while Loom's autograd drops storage by forgetting it. A
 * FinalizationRegistry on the boxes disposes the tensor of a box that has been garbage-collected. The held
 * value is the box's `ref` (not the box: that would keep it alive), which always points at the current
 * tensor. Kernels run inside tf.tidy, so their intermediates never outlive the call.
 *
 * Tensors are kept flat (rank 1, `size` elements); kernels reshape them to the shapes they are given
 * (a reshape in TF.js shares the data).
 */
import type { Tensor } from '@tensorflow/tfjs-core';

interface Ref {
  t: Tensor;
}

const finalizer = new FinalizationRegistry<Ref>((ref) => {
  if (!ref.t.isDisposed) ref.t.dispose();
});

export class TfStorage {
  readonly ref: Ref;

  constructor(t: Tensor) {
    this.ref = { t };
    finalizer.register(this, this.ref);
  }

  get t(): Tensor {
    return this.ref.t;
  }

  /** Makes `t` this box's value and disposes the previous one. */
  replace(t: Tensor): void {
    const old = this.ref.t;
    this.ref.t = t;
    if (old !== t && !old.isDisposed) old.dispose();
  }

  /** Frees the tensor now (for values nothing will read again, such as a fused kernel's saved inputs). */
  dispose(): void {
    if (!this.ref.t.isDisposed) this.ref.t.dispose();
  }
}
