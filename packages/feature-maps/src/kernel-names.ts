import { getBackend, getKernel, type NamedTensorInfoMap } from '@tensorflow/tfjs-core';

/**
 * Every fused kernel a backend package may register (`tf.registerKernel`), in one file: its name,
 * inputs and attrs. The ops run a fused kernel where one is registered for the active backend
 * and the composite tfjs-ops path everywhere else; both pass the same parity suite. (Here, in the
 * lowest package that uses tfjs, so that the feature maps and core's ops read the same contracts;
 * core re-exports them.)
 */

/**
 * Positive (FAVOR+) or hyperbolic softmax features with their stabilizer, in one kernel:
 *   u = x·P  (P = d^-1/4·Wᵀ [d, m], the projection as ProjectionHolder caches it)
 *   φ = exp(u' − shift − a·|x|² + logRatio) + floor,  u' = u, or [u, −u] when symmetric
 *   shift: 'row' → max of u' per row (queries); 'group' → max of u' over all rows and features of
 *          one group (keys, per (batch, head)); 'none' → 0 (unstabilized)
 * x [G, L, d], projection [d, m] → [G, L, m'] float32 (m' = 2m when symmetric).
 */
export const PositiveFeatures = 'KaPositiveFeatures';
export type PositiveFeaturesInputs = Pick<NamedTensorInfoMap, 'x' | 'projection'>;
export type FeatureStabilizer = 'row' | 'group' | 'none';
export type PositiveFeaturesAttrs = {
  stabilizer: FeatureStabilizer;
  /** [u, −u] features (hyperbolic) instead of u (positive). */
  symmetric: boolean;
  /** a in a·|x|² (= ½·d^-1/2). */
  halfNormScale: number;
  /** Added to every exponent (= −½·log m'). */
  logRatio: number;
  /** Added to every feature after the exponential (= eps·m'^-1/2). */
  floor: number;
};

/**
 * Whether the active backend has the fused kernel `name` registered.
 *
 * @param name - a kernel name, e.g. PositiveFeatures
 */
export function hasFusedKernel(name: string): boolean {
  return getKernel(name, getBackend()) !== undefined;
}

/** Everything a backend's PositiveFeatures kernel needs, from its inputs and attrs. */
export interface PositiveFeaturesSpec {
  groups: number;
  length: number;
  dim: number;
  /** m, the projection's columns (m' = 2m when symmetric). */
  features: number;
  stabilizer: FeatureStabilizer;
  symmetric: boolean;
  halfNormScale: number;
  logRatio: number;
  floor: number;
}

/**
 * Checks a PositiveFeatures kernel call (x [G, L, d], projection [d, m]) and returns its spec —
 * shared by the backend packages so that they read inputs and attrs the same way.
 *
 * @param inputs - the kernel's inputs
 * @param attrs - the kernel's attributes
 */
export function positiveFeaturesSpec(
  inputs: Partial<Record<keyof PositiveFeaturesInputs, { shape: number[] }>>,
  attrs: unknown,
): PositiveFeaturesSpec {
  const { x, projection } = inputs;
  if (!x || !projection)
    throw new Error(`${PositiveFeatures}: inputs x and projection are required`);
  const a = attrs as PositiveFeaturesAttrs;
  const [groups, length, dim] = x.shape as [number, number, number];
  return {
    groups,
    length,
    dim,
    features: projection.shape[1]!,
    stabilizer: a.stabilizer,
    symmetric: a.symmetric,
    halfNormScale: a.halfNormScale,
    logRatio: a.logRatio,
    floor: a.floor,
  };
}

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
