import { getBackend, getKernel, type NamedTensorInfoMap } from '@tensorflow/tfjs-core';

/**
 * The fused feature-map kernel a backend package may register (`tf.registerKernel`). Declared
 * here because feature-maps does not depend on core; core's kernel-names.ts re-exports it, so
 * that file lists every fused kernel.
 *
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

/** Whether the active backend has the fused kernel `name` registered. */
export function hasFusedKernel(name: string): boolean {
  return getKernel(name, getBackend()) !== undefined;
}
