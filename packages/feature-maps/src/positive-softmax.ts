import { ExpFeatureMap, type ExpFeatureOptions, type ExpFeatureSpec } from './exp-features.js';
import type { FeatureMap } from './feature-map.js';

export type PositiveSoftmaxOptions = ExpFeatureOptions;

/**
 * FAVOR+ positive random features for the softmax kernel (Choromanski et al. 2020, Lemma 1):
 * exp(x̂·ŷ) = E_ω[exp(ω·x̂ − |x̂|²/2)·exp(ω·ŷ − |ŷ|²/2)], ω ~ N(0, I_d), x̂ = d^-1/4·x, so
 * φ(x) = m^-1/2·(exp(u − |x̂|²/2 − s) + eps), u = W·x̂, gives φ(q)·φ(k) ≈ exp(q·k/√d)
 * (up to the stabilizers, which cancel in attention). Never negative, so attention
 * denominators stay positive; the estimator's relative variance is (exp(|x̂+ŷ|²) − 1)/m for
 * IID ω (Lemma 2), lower for orthogonal ω.
 *
 * @param opts - `{ projection, eps, stabilize, compatibility }` (see PositiveSoftmaxOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { gaussianOrthogonal } from '@kernel-attention/random-features';
 * import { positiveSoftmax } from '@kernel-attention/feature-maps';
 * const phi = positiveSoftmax({ projection: gaussianOrthogonal(256, 64, { seed: 0 }) });
 * const q = tf.randomNormal([1, 8, 128, 64]);
 * const fq = phi.features(q, 'query'); // [1, 8, 128, 256]
 * ```
 */
export function positiveSoftmax(
  opts: PositiveSoftmaxOptions,
): FeatureMap & { readonly eps: number; spec(): ExpFeatureSpec; dispose(): void } {
  return new ExpFeatureMap('positiveSoftmax', opts, false);
}

/**
 * Hyperbolic positive features (Choromanski et al. 2020, Lemma 1, the cosh variant):
 * φ(x) = (2m)^-1/2·exp(−|x̂|²/2)·[exp(u), exp(−u)] (+ eps, stabilized as positiveSoftmax);
 * numFeatures = 2m. Lower variance than positiveSoftmax for the same number of ω.
 *
 * @param opts - the options of positiveSoftmax
 *
 * @example
 * ```ts
 * import { gaussianOrthogonal } from '@kernel-attention/random-features';
 * import { hyperbolicSoftmax } from '@kernel-attention/feature-maps';
 * const phi = hyperbolicSoftmax({ projection: gaussianOrthogonal(128, 64, { seed: 0 }) });
 * phi.numFeatures; // 256
 * ```
 */
export function hyperbolicSoftmax(
  opts: PositiveSoftmaxOptions,
): FeatureMap & { readonly eps: number; spec(): ExpFeatureSpec; dispose(): void } {
  return new ExpFeatureMap('hyperbolicSoftmax', opts, true);
}
