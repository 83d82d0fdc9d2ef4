/*
 * Additive attention (Bahdanau, Cho & Bengio 2015), composed of core ops:
 *
 *   e_j = vᵀ tanh(W_q·q + W_k·k_j + b)      one score per memory position j (b is W_k's bias)
 *   α = softmax(e) over the valid positions   (positions past a sequence's length get -∞)
 *   context = Σ_j α_j · value_j
 *
 * The keys' projection W_k·k_j + b does not depend on the query, so `memory()` computes it once per
 * source sequence and `attend()` runs once per decoder step.
 */
import {
  Generator, Linear, LoomError, Module, Parameter, ShapeError, add, defaultGenerator, fmtShape, init, matmul, permute,
  reshape, softmax, tanh, where,
  type DType, type Tensor,
} from '@loom/core';
import { paddingMask } from './scaled-dot-product.js';

export interface AdditiveAttentionOptions {
  /** Features of the query (the decoder state), Hq. */
  querySize: number;
  /** Features of each key, Hk. */
  keySize: number;
  /** A: the size of the hidden layer that scores each query-key pair. */
  attentionSize: number;
  generator?: Generator;
  dtype?: DType;
}

/** A source sequence prepared for attention: batch-major, so each step's products are batched over B. */
export interface AttentionMemory {
  /** W_k·keys + b: [B, S, A]. */
  keys: Tensor;
  /** [B, S, Hv]. */
  values: Tensor;
  /** [B, S], non-zero past each length; null when every position is valid. */
  mask: Tensor | null;
}

/**
 * Parameters: query.weight [A, Hq] (no bias), key.weight [A, Hk] and key.bias [A] (Linear's default init),
 * v [A] ~ U(-1/√A, 1/√A).
 */
export class AdditiveAttention extends Module {
  readonly querySize: number;
  readonly keySize: number;
  readonly attentionSize: number;
  query: Linear;
  key: Linear;
  v: Parameter;

  constructor(options: AdditiveAttentionOptions) {
    super();
    for (const k of ['querySize', 'keySize', 'attentionSize'] as const) {
      const n = options[k];
      if (!Number.isInteger(n) || n <= 0) throw new LoomError(`AdditiveAttention: options.${k} must be a positive integer, got ${String(n)}`);
    }
    const g = options.generator ?? defaultGenerator;
    const { querySize, keySize, attentionSize: A, dtype } = options;
    this.querySize = querySize;
    this.keySize = keySize;
    this.attentionSize = A;
    this.query = new Linear(querySize, A, { bias: false, dtype, generator: g });
    this.key = new Linear(keySize, A, { dtype, generator: g });
    this.v = init.uniform(new Parameter([A], { dtype }), -1 / Math.sqrt(A), 1 / Math.sqrt(A), g) as Parameter;
  }

  /**
   * Prepares keys [S, B, Hk] and values [S, B, Hv] (time-major, as the encoder returns them; default: the
   * keys) with optional lengths (each in [1, S]) for any number of attend() calls.
   */
  memory(keys: Tensor, values: Tensor = keys, lengths: readonly number[] | null = null): AttentionMemory {
    const where_ = 'AdditiveAttention.memory';
    if (keys.rank !== 3 || keys.shape[2] !== this.keySize) throw new ShapeError(`${where_}: 'keys' must be [S, B, Hk] with Hk = ${this.keySize} (keySize), got ${fmtShape(keys.shape)}`);
    if (values.rank !== 3 || values.shape[0] !== keys.shape[0] || values.shape[1] !== keys.shape[1]) {
      throw new ShapeError(`${where_}: 'values' must be [S, B, Hv] with the S and B of 'keys' ${fmtShape(keys.shape)}, got ${fmtShape(values.shape)}`);
    }
    const [S, B] = keys.shape;
    if (lengths) {
      if (lengths.length !== B) throw new LoomError(`${where_}: 'lengths' must hold ${B} entries (one per batch entry), got ${lengths.length}`);
      lengths.forEach((n, b) => {
        if (!(Number.isInteger(n) && n >= 1 && n <= S)) throw new LoomError(`${where_}: lengths[${b}] must be an integer in [1, ${S}], got ${n}`);
      });
    }
    return {
      keys: permute(this.key.forward(keys), [1, 0, 2]), // [B, S, A]
      values: permute(values, [1, 0, 2]), // [B, S, Hv]
      mask: lengths && lengths.some((n) => n < S) ? paddingMask(lengths, S, { backend: keys.backend }) : null,
    };
  }

  /** query [B, Hq] → context [B, Hv] and weights [B, S] (each row sums to 1 over the valid positions). */
  attend(query: Tensor, memory: AttentionMemory): { context: Tensor; weights: Tensor } {
    const [B, S, A] = memory.keys.shape;
    if (query.rank !== 2 || query.shape[0] !== B || query.shape[1] !== this.querySize) {
      throw new ShapeError(`AdditiveAttention.attend: 'query' must be [B, Hq] = [${B}, ${this.querySize}], got ${fmtShape(query.shape)}`);
    }
    const q = reshape(this.query.forward(query), [B, 1, A]);
    const hidden = tanh(add(memory.keys, q)); // [B, S, A]
    let scores = reshape(matmul(hidden, reshape(this.v, [A, 1])), [B, S]);
    if (memory.mask) scores = where(memory.mask, -Infinity, scores);
    const weights = softmax(scores, -1); // [B, S]
    const Hv = memory.values.shape[2];
    const context = reshape(matmul(reshape(weights, [B, 1, S]), memory.values), [B, Hv]);
    return { context, weights };
  }

  /** memory() and attend() in one call: query [B, Hq], keys [S, B, Hk], values [S, B, Hv]. */
  forward(query: Tensor, keys: Tensor, values: Tensor = keys, lengths: readonly number[] | null = null): { context: Tensor; weights: Tensor } {
    return this.attend(query, this.memory(keys, values, lengths));
  }
}
