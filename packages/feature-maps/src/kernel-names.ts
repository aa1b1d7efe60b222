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
