import { Module, Parameter } from './module.js';
import { uniform, normal } from './init.js';
import { Generator, defaultGenerator } from '../random.js';
import type { Tensor } from '../tensor.js';
import type { DType } from '../dtype.js';
import { embedding, linear } from '../functional.js';
import { LoomError } from '../errors.js';

export interface LayerOptions {
  dtype?: DType;
  generator?: Generator;
}

/** y = x·Wᵀ + b. W: [out, in]; W and b ~ U(-1/√in, 1/√in), PyTorch's default. */
export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LayerOptions & { bias?: boolean } = {}) {
    super();
    checkPositive('Linear', { inFeatures, outFeatures });
    const g = opts.generator ?? defaultGenerator;
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = uniform(new Parameter([outFeatures, inFeatures], { dtype: opts.dtype }), -bound, bound, g) as Parameter;
    this.bias = opts.bias === false ? null : (uniform(new Parameter([outFeatures], { dtype: opts.dtype }), -bound, bound, g) as Parameter);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** A lookup table [V, D] ~ N(0, 1), PyTorch's default. ids: int32 of any shape → [...ids.shape, D]. */
export class Embedding extends Module {
  weight: Parameter;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: LayerOptions = {}) {
    super();
    checkPositive('Embedding', { numEmbeddings, embeddingDim });
    this.weight = normal(new Parameter([numEmbeddings, embeddingDim], { dtype: opts.dtype }), 0, 1, opts.generator ?? defaultGenerator) as Parameter;
  }

  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}

export function checkPositive(where: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v <= 0) throw new LoomError(`${where}: ${k} must be a positive integer, got ${v}`);
  }
}
