/*
 * Multi-head attention: torch.nn.MultiheadAttention (batch_first=False), composed of core ops.
 *
 *   q = query·W_qᵀ + b_q, k = key·W_kᵀ + b_k, v = value·W_vᵀ + b_v     (W_q, W_k, W_v: rows of in_proj_weight)
 *   split E into nh heads of hs = E / nh; per head: scaledDotProductAttention(q, k, v, masks)
 *   output = concat(heads)·W_oᵀ + b_o                                   (out_proj)
 *
 * Time-major like the rest of Loom: query [Tq, B, E], key and value [Tk, B, E] → output [Tq, B, E].
 * Parameters are named as PyTorch's (in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight [E, E],
 * out_proj.bias [E]) and listed in its order, so state dicts import by name. Key and value must have E
 * features (PyTorch's kdim = vdim = embed_dim case).
 */
import {
  Generator, Linear, LoomError, Module, Parameter, ShapeError, defaultGenerator, fmtShape, init, linear, mean,
  permute, reshape, slice, split,
  type DType, type Tensor,
} from '@loom/core';
import { causalMask, scaledDotProductAttention } from './scaled-dot-product.js';

export interface MultiheadAttentionOptions {
  /** E: features of query, key, value and output. */
  embedSize: number;
  /** nh; must divide embedSize. */
  numHeads: number;
  /** Dropout on the attention weights (training only). Default 0. */
  dropout?: number;
  /** in_proj_bias and out_proj.bias. Default true. */
  bias?: boolean;
  /** For the initialisation and the dropout masks. Default defaultGenerator. */
  generator?: Generator;
  dtype?: DType;
}

export interface AttentionMasks {
  /** [B, Tk], non-zero at padding keys (paddingMask(lengths, Tk) makes one). Default none. */
  keyPaddingMask?: Tensor | null;
  /** Non-zero where query i may not attend to key j; broadcast against [B, nh, Tq, Tk], usually [Tq, Tk]. */
  attnMask?: Tensor | null;
  /** Also block every key in a query's future (causalMask(Tq, Tk)). Default false. */
  causal?: boolean;
}

export interface MultiheadAttentionForwardOptions extends AttentionMasks {
  /** Return the attention weights. Default true. */
  needWeights?: boolean;
  /** Weights averaged over heads [B, Tq, Tk] (true, the default) or per head [B, nh, Tq, Tk]. */
  averageWeights?: boolean;
}

export interface AttentionResult {
  /** [Tq, B, E] */
  output: Tensor;
  /** [B, Tq, Tk] (averaged over heads) or [B, nh, Tq, Tk]; null when needWeights is false. Before dropout. */
  weights: Tensor | null;
}

/**
 * Initialisation as PyTorch's: in_proj_weight Xavier-uniform, out_proj.weight U(-1/√E, 1/√E), both biases 0.
 */
export class MultiheadAttention extends Module {
  readonly embedSize: number;
  readonly numHeads: number;
  readonly headSize: number;
  readonly dropout: number;
  in_proj_weight: Parameter;
  in_proj_bias: Parameter | null;
  out_proj: Linear;
  _generator: Generator;

  constructor(options: MultiheadAttentionOptions) {
    super();
    const where = 'MultiheadAttention';
    const { embedSize: E, numHeads: nh } = options;
    for (const [k, v] of [['embedSize', E], ['numHeads', nh]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new LoomError(`${where}: options.${k} must be a positive integer, got ${String(v)}`);
    }
    if (E % nh !== 0) throw new LoomError(`${where}: options.embedSize (${E}) must be divisible by options.numHeads (${nh})`);
    const p = options.dropout ?? 0;
    if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new LoomError(`${where}: options.dropout must be a number in [0, 1), got ${String(p)}`);
    const bias = options.bias ?? true;
    if (typeof bias !== 'boolean') throw new LoomError(`${where}: options.bias must be a boolean, got ${String(bias)}`);
    const g = (this._generator = options.generator ?? defaultGenerator);
    this.embedSize = E;
    this.numHeads = nh;
    this.headSize = E / nh;
    this.dropout = p;
    const dtype = options.dtype;
    this.in_proj_weight = init.xavierUniform(new Parameter([3 * E, E], { dtype }), 1, g) as Parameter;
    this.in_proj_bias = bias ? (init.constant(new Parameter([3 * E], { dtype }), 0) as Parameter) : null;
    this.out_proj = new Linear(E, E, { bias, dtype, generator: g });
    if (this.out_proj.bias) init.constant(this.out_proj.bias, 0);
  }

  /** Self-attention when query, key and value are the same tensor (one projection instead of three). */
  forward(query: Tensor, key: Tensor, value: Tensor, opts: MultiheadAttentionForwardOptions = {}): AttentionResult {
    const where = 'MultiheadAttention.forward';
    const E = this.embedSize, nh = this.numHeads, hs = this.headSize;
    for (const [name, t] of [['query', query], ['key', key], ['value', value]] as const) {
      if (t.rank !== 3 || t.shape[2] !== E) throw new ShapeError(`${where}: '${name}' must be [T, B, E] with E = ${E} (embedSize), got ${fmtShape(t.shape)}`);
    }
    const [Tq, B] = query.shape, Tk = key.shape[0];
    if (key.shape[1] !== B || value.shape[1] !== B) {
      throw new ShapeError(`${where}: 'query' ${fmtShape(query.shape)}, 'key' ${fmtShape(key.shape)} and 'value' ${fmtShape(value.shape)} must have the same batch size (axis 1)`);
    }
    if (value.shape[0] !== Tk) throw new ShapeError(`${where}: 'key' ${fmtShape(key.shape)} and 'value' ${fmtShape(value.shape)} must have the same length (axis 0)`);

    let q: Tensor, k: Tensor, v: Tensor;
    const W = this.in_proj_weight, b = this.in_proj_bias;
    if (query === key && key === value) {
      [q, k, v] = split(linear(query, W, b), 3, 2); // each [T, B, E]
    } else {
      const rows = (i: number): [Tensor, Tensor | null] => [
        slice(W, [i * E, 0], [(i + 1) * E, E]),
        b ? slice(b, [i * E], [(i + 1) * E]) : null,
      ];
      q = linear(query, ...rows(0));
      if (key === value) [k, v] = split(linear(key, slice(W, [E, 0], [3 * E, E]), b ? slice(b, [E], [3 * E]) : null), 2, 2);
      else [k, v] = [linear(key, ...rows(1)), linear(value, ...rows(2))];
    }
    const heads = (t: Tensor, T: number): Tensor => permute(reshape(t, [T, B, nh, hs]), [1, 2, 0, 3]); // [B, nh, T, hs]

    const mask = this.masksFor(where, opts, B, Tq, Tk, query);
    const r = scaledDotProductAttention(heads(q, Tq), heads(k, Tk), heads(v, Tk), {
      mask, dropout: this.dropout, training: this.training, generator: this._generator,
    }); // output [B, nh, Tq, hs], weights [B, nh, Tq, Tk]
    const merged = reshape(permute(r.output, [2, 0, 1, 3]), [Tq, B, E]); // [Tq, B, nh, hs] → [Tq, B, E]
    const output = this.out_proj.forward(merged);
    if (opts.needWeights === false) return { output, weights: null };
    return { output, weights: opts.averageWeights === false ? r.weights : mean(r.weights, 1) };
  }

  /** The masks given, each broadcast against [B, nh, Tq, Tk]; a position is blocked when any of them blocks it. */
  private masksFor(where: string, opts: AttentionMasks, B: number, Tq: number, Tk: number, like: Tensor): Tensor[] {
    const parts: Tensor[] = [];
    if (opts.attnMask) {
      const m = opts.attnMask;
      const want = [B, this.numHeads, Tq, Tk];
      const ok = m.rank >= 2 && m.rank <= 4 && m.shape.every((d, i) => d === 1 || d === want[4 - m.rank + i]);
      if (!ok) throw new ShapeError(`${where}: 'opts.attnMask' ${fmtShape(m.shape)} must broadcast against [B, nh, Tq, Tk] = ${fmtShape(want)}, e.g. [Tq, Tk]`);
      parts.push(m);
    }
    if (opts.causal) parts.push(causalMask(Tq, Tk, { backend: like.backend }));
    if (opts.keyPaddingMask) {
      const m = opts.keyPaddingMask;
      if (m.rank !== 2 || m.shape[0] !== B || m.shape[1] !== Tk) {
        throw new ShapeError(`${where}: 'opts.keyPaddingMask' must be [B, Tk] = [${B}, ${Tk}], got ${fmtShape(m.shape)}`);
      }
      parts.push(reshape(m, [B, 1, 1, Tk]));
    }
    return parts;
  }
}
