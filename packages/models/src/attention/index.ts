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
