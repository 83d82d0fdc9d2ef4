/*
 * A self-attention block: torch.nn.TransformerEncoderLayer (ReLU, batch_first=False), composed of core ops.
 *
 *   post-norm (normFirst false, PyTorch's default; Vaswani et al. 2017):
 *     x = norm1(x + dropout(selfAttention(x)));  x = norm2(x + dropout(feedForward(x)))
 *   pre-norm (normFirst true; GPT-2, Xiong et al. 2020):
 *     x = x + dropout(selfAttention(norm1(x)));  x = x + dropout(feedForward(norm2(x)))
 *   feedForward(x) = linear2(dropout(relu(linear1(x))))
 *
 * As an encoder layer it takes a key padding mask; in a causal language model, `causal: true`. Parameters
 * are named as PyTorch's (self_attn.*, linear1.*, linear2.*, norm1.*, norm2.*), in its order.
 */
import {
  Generator, Linear, LoomError, Module, ShapeError, add, defaultGenerator, dropout, fmtShape, relu,
  type DType, type Tensor,
} from '@loom/core';
import { LayerNorm } from './layer-norm.js';
import { MultiheadAttention, type AttentionMasks } from './multihead.js';

export interface SelfAttentionBlockOptions {
  /** E */
  embedSize: number;
  /** nh; must divide embedSize. */
  numHeads: number;
  /** Hidden features of the feed-forward part. Default 4·embedSize. */
  ffnSize?: number;
  /** On the attention weights, after each sub-layer and inside the feed-forward part. Default 0. */
  dropout?: number;
  /** Pre-norm (true) or post-norm (false, PyTorch's default). Default false. */
  normFirst?: boolean;
  /** Layer norm eps. Default 1e-5. */
  layerNormEps?: number;
  generator?: Generator;
  dtype?: DType;
}

export interface SelfAttentionBlockResult {
  /** [T, B, E] */
  output: Tensor;
  /** Attention weights averaged over heads [B, T, T] (when asked for), else null. */
  weights: Tensor | null;
}

export class SelfAttentionBlock extends Module {
  readonly normFirst: boolean;
  readonly dropout: number;
  self_attn: MultiheadAttention;
  linear1: Linear;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  _generator: Generator;

  constructor(options: SelfAttentionBlockOptions) {
    super();
    const where = 'SelfAttentionBlock';
    const E = options.embedSize;
    const F = options.ffnSize ?? 4 * E;
    if (!Number.isInteger(F) || F <= 0) throw new LoomError(`${where}: options.ffnSize must be a positive integer, got ${String(F)}`);
    const p = options.dropout ?? 0;
    if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new LoomError(`${where}: options.dropout must be a number in [0, 1), got ${String(p)}`);
    const normFirst = options.normFirst ?? false;
    if (typeof normFirst !== 'boolean') throw new LoomError(`${where}: options.normFirst must be a boolean, got ${String(normFirst)}`);
    const g = (this._generator = options.generator ?? defaultGenerator);
    const dtype = options.dtype;
    this.normFirst = normFirst;
    this.dropout = p;
    this.self_attn = new MultiheadAttention({ embedSize: E, numHeads: options.numHeads, dropout: p, generator: g, dtype });
    this.linear1 = new Linear(E, F, { dtype, generator: g });
    this.linear2 = new Linear(F, E, { dtype, generator: g });
    this.norm1 = new LayerNorm(E, { eps: options.layerNormEps, dtype });
    this.norm2 = new LayerNorm(E, { eps: options.layerNormEps, dtype });
  }

  /** x [T, B, E] → [T, B, E]. Masks as MultiheadAttention's (keyPaddingMask [B, T], attnMask, causal). */
  forward(x: Tensor, opts: AttentionMasks & { needWeights?: boolean } = {}): SelfAttentionBlockResult {
    const E = this.self_attn.embedSize;
    if (x.rank !== 3 || x.shape[2] !== E) throw new ShapeError(`SelfAttentionBlock.forward: 'x' must be [T, B, E] with E = ${E}, got ${fmtShape(x.shape)}`);
    const drop = (t: Tensor): Tensor => dropout(t, this.dropout, this.training, this._generator);
    const attend = (t: Tensor): { y: Tensor; weights: Tensor | null } => {
      const r = this.self_attn.forward(t, t, t, { ...opts, needWeights: opts.needWeights ?? false });
      return { y: drop(r.output), weights: r.weights };
    };
    const feedForward = (t: Tensor): Tensor => drop(this.linear2.forward(drop(relu(this.linear1.forward(t)))));
    if (this.normFirst) {
      const a = attend(this.norm1.forward(x));
      const h = add(x, a.y);
      return { output: add(h, feedForward(this.norm2.forward(h))), weights: a.weights };
    }
    const a = attend(x);
    const h = this.norm1.forward(add(x, a.y));
    return { output: this.norm2.forward(add(h, feedForward(h))), weights: a.weights };
  }
}
