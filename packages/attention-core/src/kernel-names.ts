import type { NamedTensorInfoMap } from '@tensorflow/tfjs-core';

// The fused feature-map kernel is declared by feature-maps (core depends on it, not the reverse)
export {
  type FeatureStabilizer,
  hasFusedKernel,
  PositiveFeatures,
  type PositiveFeaturesAttrs,
  type PositiveFeaturesInputs,
  type PositiveFeaturesSpec,
  positiveFeaturesSpec,
} from '@kernel-attention/feature-maps';

/**
 * Fused kernels that backend packages may register (`tf.registerKernel`), in one place: the name,
 * its inputs and attrs. Core runs a fused kernel where one is registered for the active backend
 * and the composite tfjs-ops path everywhere else; both pass the same parity suite.
 */

/**
 * Causal linear attention numerator and denominator in one pass, with per-position log-scales:
 *   out[g, i, :] = Σ_{j≤i} exp(qLog[g, i] + kLog[g, j]) (qFeat[g, i]·kFeat[g, j]) vOnes[g, j, :]
 * qFeat, kFeat [G, L, m]; vOnes [G, L, w] (the values with a column of ones, or the keep mask, last);
 * qLog, kLog [G, L, 1] → [G, L, w] float32. No L×m×w tensor: the m×w prefix state stays on chip.
 * The state is kept relative to the running maximum r_i = max_{j≤i} kLog[g, j] (rescaled when it
 * grows) and the output takes exp(qLog_i + r_i); callers keep qLog_i + r_i ≤ 0 (attention passes
 * kLog = ℓ, qLog = −r: the exactly causal key stabilizer), so nothing overflows.
 */
export const CausalLinearAttention = 'KaCausalLinearAttention';
export type CausalLinearAttentionInputs = Pick<
  NamedTensorInfoMap,
  'qFeat' | 'kFeat' | 'vOnes' | 'qLog' | 'kLog'
>;
// biome-ignore lint/complexity/noBannedTypes: the kernel has no attributes; the type names that
export type CausalLinearAttentionAttrs = {};

/**
 * Bidirectional linear attention numerator and denominator in one program:
 *   out[g, i, :] = qFeat[g, i] · (kFeat[g]ᵀ vOnes[g])
 * qFeat [G, Lq, m], kFeat [G, Lk, m], vOnes [G, Lk, w] → [G, Lq, w] float32.
 */
export const BidirectionalLinearAttention = 'KaBidirectionalLinearAttention';
export type BidirectionalLinearAttentionInputs = Pick<
  NamedTensorInfoMap,
  'qFeat' | 'kFeat' | 'vOnes'
>;
export type BidirectionalLinearAttentionAttrs = CausalLinearAttentionAttrs;
