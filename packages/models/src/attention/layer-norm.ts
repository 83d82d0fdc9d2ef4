/*
 * Layer normalisation (Ba, Kiros & Hinton 2016): torch.nn.LayerNorm over the last axis, composed of core ops.
 *
 *   y = (x - mean(x)) / √(var(x) + eps) · weight + bias      (mean and biased variance over the last axis)
 */
import { LoomError, Module, Parameter, ShapeError, add, fmtShape, init, mean, mul, sqrt, sub, div, type DType, type Tensor } from '@loom/core';

export interface LayerNormOptions {
  /** Added to the variance. Default 1e-5, as PyTorch. */
  eps?: number;
  /** A learned weight (init 1) and bias (init 0). Default true. */
  elementwiseAffine?: boolean;
  dtype?: DType;
}

export class LayerNorm extends Module {
  readonly size: number;
  readonly eps: number;
  weight: Parameter | null;
  bias: Parameter | null;

  constructor(size: number, options: LayerNormOptions = {}) {
    super();
    if (!Number.isInteger(size) || size <= 0) throw new LoomError(`LayerNorm: size must be a positive integer, got ${String(size)}`);
    const eps = options.eps ?? 1e-5;
    if (typeof eps !== 'number' || !(eps >= 0)) throw new LoomError(`LayerNorm: options.eps must be a non-negative number, got ${String(eps)}`);
    this.size = size;
    this.eps = eps;
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? (init.constant(new Parameter([size], { dtype: options.dtype }), 1) as Parameter) : null;
    this.bias = affine ? (init.constant(new Parameter([size], { dtype: options.dtype }), 0) as Parameter) : null;
  }

  /** x [..., size] → the same shape. */
  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.size) {
      throw new ShapeError(`LayerNorm.forward: 'x' must be [..., ${this.size}], got ${fmtShape(x.shape)}`);
    }
    const centred = sub(x, mean(x, -1, true));
    const variance = mean(mul(centred, centred), -1, true);
    const y = div(centred, sqrt(add(variance, this.eps)));
    return this.weight && this.bias ? add(mul(y, this.weight), this.bias) : y;
  }
}
