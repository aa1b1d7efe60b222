/**
 * Kernel feature maps φ with φ(q)·φ(k) ≈ K(q, k): FAVOR+'s positive softmax features and its
 * hyperbolic, trigonometric and generalized relatives, FAVOR++ and the dense-exponential maps,
 * and the `FeatureMap` interface for your own kernel.
 *
 * @module @kernel-attention/feature-maps
 */
export {
  type BackendCapabilities,
  backendCapabilities,
  backendsWith,
  registerBackendCapabilities,
} from './backend-capabilities.js';
export {
  type AttentionStatistics,
  DENSE_EXPONENTIAL_VARIANTS,
  type DenseExponentialFit,
  type DenseExponentialOptions,
  type DenseExponentialVariant,
  denseExponentialSoftmax,
  type FittedParameters,
  fitDenseExponential,
  fittedParameters,
  oprfLogSecondMoment,
  oprfOptimalA,
  oprfRelativeVariance,
  oprfRho,
  optimizedPositiveSoftmax,
} from './dense-exponential.js';
export type { ExpFeatureSpec } from './exp-features.js';
export type { FactoredFeatures, FeatureMap, FeatureRole, KeyParts } from './feature-map.js';
export { type GeneralizedOptions, generalized, type KernelFunction } from './generalized.js';
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
} from './kernel-names.js';
export { expBelow, matMul } from './packed-lanes.js';
export {
  hyperbolicSoftmax,
  type PositiveSoftmaxOptions,
  positiveSoftmax,
} from './positive-softmax.js';
export { type Projection, ProjectionHolder } from './projection.js';
export { type SoftmaxKernelOptions, softmaxKernelFeatures } from './softmax-kernel-features.js';
export { type TrigSoftmaxOptions, trigSoftmax } from './trig-softmax.js';
export {
  assertOptions,
  assertTensor,
  describeValue,
  isTensor,
  shapeString,
  type TensorRequirements,
} from './validate.js';
