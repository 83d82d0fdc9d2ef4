/*
 * The encoder-decoder with additive attention (Bahdanau, Cho & Bengio 2015) on Seq2Seq:
 *
 *   source [S, B] → embedding → bidirectional encoder → annotations h_j [S, B, 2H]
 *   s_0 = tanh(W_s·[h→_last; h←_first])          per layer (the bridge from 2H to H; LSTM cells too)
 *   step i (previous token y, state s_{i-1}):
 *     c_i, α_i = AdditiveAttention(query = top layer of s_{i-1}, annotations)
 *     s_i = decoder([embed(y); c_i], s_{i-1})
 *     logits_i = W_o·tanh(W_c·[s_i; c_i] + b_c) + b_o
 *
 * Only `encode` (the bridge) and `decodeStep` (the loop above) differ from Seq2Seq, so teacher forcing,
 * scheduled sampling, greedy decoding and beam search are the base class's. Deviations from the paper:
 * the layer before the output is Luong et al.'s (2015) attentional state tanh(W_c·[s_i; c_i]) rather
 * than a maxout over s_{i-1}, y_{i-1} and c_i (it keeps the output layer at H inputs, which dominates
 * the cost with a vocabulary of thousands); the bridge reads both directions' final states (the paper:
 * the backward one).
 */
import {
  Linear, ShapeError, concat, dropout, fmtShape, linear, permute, reshape, slice, tanh,
  type Tensor,
} from '@loom/core';
import type { RecurrentState } from '../recurrent/index.js';
import { Seq2Seq, type DecodeOptions, type EncoderOutput, type Seq2SeqConfig } from '../seq2seq.js';
import { checkPositiveInts } from '../checks.js';
import { AdditiveAttention, type AttentionMemory } from './additive.js';

export interface AttentionSeq2SeqConfig extends Seq2SeqConfig {
  /** A: the scoring layer's size. Default hiddenSize. */
  attentionSize?: number;
}

export interface AttentionDecodeStep {
  logits: Tensor; // [T, B, V]
  state: RecurrentState;
  /** α for every step: [T, B, S]; rows sum to 1 over each source's length. */
  attention: Tensor;
}

export interface GreedyAttentionResult {
  /** Per source: the tokens, without EOS. */
  tokens: number[][];
  /** Per source: one row of S weights per decoder step (the tokens, then EOS when it was emitted). */
  attention: number[][][];
}

/**
 * Parameters, in namedParameters() order: Seq2Seq's (srcEmbedding, tgtEmbedding, encoder.* with its
 * _reverse direction, decoder.* reading E + 2H features, output.weight [V, H], output.bias), then
 * bridge.weight [H, 2H], bridge.bias, bridgeCell.* (LSTM only), attention.* (AdditiveAttention with
 * Hq = H, Hk = 2H), combine.weight [H, 3H], combine.bias (Linear's default init).
 */
export class AttentionSeq2Seq extends Seq2Seq {
  readonly attentionSize: number;
  bridge: Linear;
  bridgeCell: Linear | null;
  attention: AdditiveAttention;
  combine: Linear;
  /** attention memories of encoder outputs (keys projected once per source batch). */
  _memories = new WeakMap<Tensor, AttentionMemory>();

  constructor(config: AttentionSeq2SeqConfig) {
    const { embedSize: E, hiddenSize: H } = config;
    super(config, 'AttentionSeq2Seq', { bidirectionalEncoder: true, decoderInputSize: E + 2 * H });
    const A = config.attentionSize ?? H;
    checkPositiveInts('AttentionSeq2Seq', { attentionSize: A }, ['attentionSize']);
    this.attentionSize = A;
    const g = this.generator, dtype = this.config.dtype;
    this.bridge = new Linear(2 * H, H, { dtype, generator: g });
    this.bridgeCell = this.config.cell === 'lstm' ? new Linear(2 * H, H, { dtype, generator: g }) : null;
    this.attention = new AdditiveAttention({ querySize: H, keySize: 2 * H, attentionSize: A, dtype, generator: g });
    this.combine = new Linear(3 * H, H, { dtype, generator: g });
  }

  /** The bidirectional encoder; its final state [2L, B, H] bridged to the decoder's [L, B, H]. */
  override encode(src: Tensor, srcLengths?: readonly number[] | null): EncoderOutput {
    const enc = super.encode(src, srcLengths);
    const { numLayers: L, hiddenSize: H } = this.config;
    const B = src.shape[1];
    // [2L, B, H] (layer-major, direction-minor) → [L, B, 2H]: forward and backward side by side.
    const join = (t: Tensor): Tensor => reshape(permute(reshape(t, [L, 2, B, H]), [0, 2, 1, 3]), [L, B, 2 * H]);
    const h = tanh(this.bridge.forward(join(enc.state.h)));
    const state: RecurrentState = this.bridgeCell ? { h, c: tanh(this.bridgeCell.forward(join(enc.state.c!))) } : { h };
    return { outputs: enc.outputs, state, lengths: enc.lengths };
  }

  /** The decoder over inputs [T, B], one step at a time, attending to `encoded` at each step. */
  override decodeStep(inputs: Tensor, state: RecurrentState, encoded: EncoderOutput): AttentionDecodeStep {
    const { hiddenSize: H, embedSize: E, numLayers: L, dropout: p } = this.config;
    const [T, B] = inputs.shape;
    const S = encoded.outputs.shape[0];
    if (encoded.outputs.shape[1] !== B) {
      throw new ShapeError(`AttentionSeq2Seq.decodeStep: 'inputs' ${fmtShape(inputs.shape)} and 'encoded.outputs' ${fmtShape(encoded.outputs.shape)} must have the same batch size`);
    }
    const memory = this.memoryFor(encoded);
    const embedded = dropout(this.tgtEmbedding.forward(inputs), p, this.training, this.generator); // [T, B, E]
    const outs: Tensor[] = [];
    const alphas: Tensor[] = [];
    let s = state;
    for (let t = 0; t < T; t++) {
      const query = reshape(slice(s.h, [L - 1, 0, 0], [L, B, H]), [B, H]); // the top layer of s_{i-1}
      const a = this.attention.attend(query, memory); // context [B, 2H], weights [B, S]
      const context = reshape(a.context, [1, B, 2 * H]);
      const y = T === 1 ? embedded : slice(embedded, [t, 0, 0], [t + 1, B, E]); // [1, B, E]
      const r = this.decoder.forward(concat([y, context], 2), s); // [1, B, H]
      s = r.state;
      outs.push(concat([r.output, context], 2)); // [1, B, 3H]
      alphas.push(reshape(a.weights, [1, B, S]));
    }
    const attentional = tanh(this.combine.forward(reshape(concat(outs, 0), [T * B, 3 * H]))); // [T·B, H]
    const logits = linear(dropout(attentional, p, this.training, this.generator), this.output.weight, this.output.bias); // [T·B, V]
    return { logits: reshape(logits, [T, B, this.config.tgtVocabSize]), state: s, attention: concat(alphas, 0) };
  }

  /**
   * Greedy decoding that also returns the attention weights of every step, for drawing alignments
   * (greedyDecode gives the same tokens).
   */
  greedyDecodeWithAttention(src: Tensor, opts: DecodeOptions): GreedyAttentionResult {
    checkPositiveInts('AttentionSeq2Seq.greedyDecodeWithAttention', opts, ['maxLen']);
    return this.inEvalMode(() => {
      const [S, B] = src.shape;
      const attention: number[][][] = Array.from({ length: B }, () => []);
      const tokens = this.greedyLoop(src, opts, (step, emitted, enc) => {
        const alpha = (step as AttentionDecodeStep).attention.data; // decodeStep is this class's
        for (const b of emitted) attention[b].push(Array.from(alpha.subarray(b * S, b * S + (enc.lengths ? enc.lengths[b] : S))));
      });
      return { tokens, attention };
    });
  }

  private memoryFor(encoded: EncoderOutput): AttentionMemory {
    let m = this._memories.get(encoded.outputs);
    if (!m) {
      m = this.attention.memory(encoded.outputs, encoded.outputs, encoded.lengths);
      this._memories.set(encoded.outputs, m);
    }
    return m;
  }
}
