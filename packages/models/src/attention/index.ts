// Attention (docs/attention.md): scaled dot-product and multi-head attention, layer norm, the
// self-attention block (encoder layer or causal LM layer).
export {
  scaledDotProductAttention, causalMask, paddingMask,
  type ScaledDotProductOptions, type ScaledDotProductResult,
} from './scaled-dot-product.js';
export {
  MultiheadAttention,
  type MultiheadAttentionOptions, type MultiheadAttentionForwardOptions, type AttentionMasks, type AttentionResult,
} from './multihead.js';
export { LayerNorm, type LayerNormOptions } from './layer-norm.js';
export { SelfAttentionBlock, type SelfAttentionBlockOptions, type SelfAttentionBlockResult } from './block.js';
export { SelfAttentionLM, SELF_ATTENTION_LM_DEFAULTS, type SelfAttentionLMConfig, type AttentionContext } from './causal-lm.js';
// Additive (Bahdanau) attention and the encoder-decoder that uses it.
export { AdditiveAttention, type AdditiveAttentionOptions, type AttentionMemory } from './additive.js';
export {
  AttentionSeq2Seq, type AttentionSeq2SeqConfig, type AttentionDecodeStep, type GreedyAttentionResult,
} from './encoder-decoder.js';
export type { Seq2SeqLayout } from '../seq2seq.js';
// Evaluation: corpus BLEU and attention heatmaps.
export { corpusBleu, type BleuResult } from './bleu.js';
export { attentionHeatmapSvg, type HeatmapPanel, type HeatmapOptions } from './heatmap.js';
