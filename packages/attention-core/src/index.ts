/**
 * The attention operations on `[batch, heads, length, dim]` tensors: exact softmax attention,
 * linear attention and FAVOR+ (bidirectional and causal), recurrent decoding, the mechanisms of
 * the efficient-attention literature, and backend selection.
 *
 * @module @kernel-attention/core
 */

export {
  BidirectionalLinearAttention,
  type BidirectionalLinearAttentionAttrs,
  type BidirectionalLinearAttentionInputs,
  CausalLinearAttention,
  type CausalLinearAttentionAttrs,
  type CausalLinearAttentionInputs,
  type FeatureStabilizer,
  hasFusedKernel,
  PositiveFeatures,
  type PositiveFeaturesAttrs,
  type PositiveFeaturesInputs,
  type PositiveFeaturesSpec,
  positiveFeaturesSpec,
} from '@kernel-attention/feature-maps';
export {
  type BackendSelection,
  DEFAULT_BACKEND_ORDER,
  type SelectBackendOptions,
  selectBackend,
} from './backend/select-backend.js';
export {
  type BayesianAttentionOptions,
  type BayesianAttentionResult,
  bayesianAttention,
  klWeibullGamma,
} from './mechanisms/bayesian-attention.js';
export {
  type CombinerAttentionOptions,
  type CombinerPooling,
  type CombinerVariant,
  combinerAttention,
} from './mechanisms/combiner-attention.js';
export {
  type GatedAttentionOptions,
  type GatedAttentionResult,
  type GateMode,
  gatedAttention,
  relaxedGates,
} from './mechanisms/gated-attention.js';
export {
  clippedRelativePositions,
  type RelationAwareAttentionOptions,
  relationAwareAttention,
} from './mechanisms/relation-aware-attention.js';
export {
  type RpeFavorAttentionOptions,
  rpeFavorAttention,
} from './mechanisms/rpe-favor-attention.js';
export {
  defaultToeplitzMethod,
  FFT_MIN_LENGTH,
  type ToeplitzMethod,
  type ToeplitzOptions,
  toeplitzMatmul,
  toeplitzMatrix,
} from './mechanisms/toeplitz.js';
export {
  type CausalState,
  type CausalStateOptions,
  type CausalStepOptions,
  causalState,
  favorCausalStep,
  linearCausalStep,
} from './ops/causal-state.js';
export { type FavorAttentionOptions, favorAttention } from './ops/favor/favor-attention.js';
export {
  DEFAULT_CHUNK_SIZE,
  type LinearAttentionOptions,
  linearAttention,
} from './ops/linear-attention.js';
export type { PersistentMemory } from './ops/persistent-memory.js';
export { type SoftmaxAttentionOptions, softmaxAttention } from './ops/softmax-attention.js';
