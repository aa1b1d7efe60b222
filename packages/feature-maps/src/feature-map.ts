import type { Tensor } from '@tensorflow/tfjs-core';

/** Whether features are computed for queries or keys (stabilizers differ, see each map). */
export type FeatureRole = 'query' | 'key';

/**
 * Key features split so that attention can stabilize them itself. For every position j:
 *
 *   φ(k_j; s) = exp(logScale_j − s) · base_j + floor
 *
 * where s is the key stabilizer: the largest logScale over the keys a query sees (all unpadded
 * keys of its (batch, head) in bidirectional attention; keys 0..i for causal output i, kept as a
 * running maximum, so no output depends on a later key). `features(k, 'key')` uses s = max_j
 * logScale_j over all keys given. Convention: the largest entry of each base_j is the map's
 * constant ratio (m'^-1/2 for positive features), so eps is a floor relative to the largest
 * feature of the keys a query sees.
 */
export interface KeyParts {
  /** `[..., L, m']`: the self-stabilized part of each key's features (finite, never negative for positive maps). */
  base: Tensor;
  /** `[..., L, 1]`: log of each key's own scale. */
  logScale: Tensor;
  /** Constant added to every feature after scaling (m^-1/2·eps for positive features). */
  floor: number;
}

/**
 * Features as φ(x) = scale ⊙ rows + floor, scale one factor per row ([..., L, 1]); lets
 * attention apply the factor to its small products instead of to every feature.
 */
export interface FactoredFeatures {
  /** [..., L, m'] */
  rows: Tensor;
  /** [..., L, 1] */
  scale: Tensor;
  floor: number;
}

/**
 * A kernel feature map φ: R^d → R^{m'} with φ(q)·φ(k) ≈ K(q, k). This is the interface a
 * researcher implements to plug their own kernel into `favorAttention` and every mechanism
 * that takes a feature map.
 *
 * Contract: `features` maps [..., L, d] to [..., L, m'] with m' = numFeatures, is differentiable
 * (tfjs ops only), and frees its intermediates. Any factor that is constant across the keys of
 * one (batch, head), or across the features of one query, cancels in attention and may be
 * removed to stabilize the computation.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import type { FeatureMap } from '@kernel-attention/feature-maps';
 * // elu(x) + 1, the "linear transformer" kernel (Katharopoulos et al. 2020)
 * const eluPlusOne: FeatureMap = {
 *   name: 'elu+1',
 *   numFeatures: 64,
 *   features: (x) => tf.tidy(() => tf.add(tf.elu(x), 1)),
 * };
 * ```
 */
export interface FeatureMap {
  readonly name: string;
  /** Output width m' (2m for trigonometric and hyperbolic maps). */
  readonly numFeatures: number;
  /**
   * @param x - inputs [..., L, d]
   * @param role - 'query' or 'key'
   */
  features(x: Tensor, role: FeatureRole): Tensor;
  /**
   * Optional: key features split into parts (see KeyParts), for maps whose key features depend
   * on other positions (a sequence-wide stabilizer). Attention then stabilizes keys itself over
   * the keys each query sees — exactly causal, and padded keys never move the stabilizer — and
   * recurrent decoding (`favorCausalStep`) keeps a running maximum. Maps without it are treated
   * as position-local (features of one key depend on that key only).
   *
   * @param x - keys [..., L, d]
   */
  keyParts?(x: Tensor): KeyParts;
  /**
   * Optional, with keyParts: 'global' makes attention use `features(k, 'key')` as it is — one
   * stabilizer over the whole sequence, also in causal attention (performer-pytorch's behaviour,
   * kept for loading its checkpoints: with a floor, later keys then move earlier causal outputs).
   * Default 'visible': attention stabilizes keys from keyParts over the keys each query sees.
   */
  readonly keyStabilizer?: 'visible' | 'global';
  /**
   * Optional: the constant every feature carries (eps·m'^-1/2 for positive features) and the
   * features without it, features(x, r) = featuresWithoutFloor(x, r) + floor. Bidirectional
   * attention then adds the floor to its small m×dv products (a rank-1 correction) instead of
   * to every one of the L×m' features — one pass over the largest tensors saved.
   */
  readonly floor?: number;
  /**
   * @param x - inputs [..., L, d]
   * @param role - 'query' or 'key'
   */
  featuresWithoutFloor?(x: Tensor, role: FeatureRole): Tensor;
  /**
   * Optional: the same features as scale ⊙ rows + floor (see FactoredFeatures).
   *
   * @param x - inputs [..., L, d]
   * @param role - 'query' or 'key'
   */
  factoredFeatures?(x: Tensor, role: FeatureRole): FactoredFeatures;
  /**
   * Optional, for data-dependent maps (FAVOR++, dense-exponential features): the map to use for
   * one attention call, fitted to its queries q [G, Lq, d] and keys k [G, Lk, d] (one group per
   * (batch, head); padded keys zeroed and marked 0 in keep [G, Lk, 1], or keep null). One
   * parameter set per group, shared by all its queries and keys (otherwise the estimate would be
   * biased); no gradient flows through the statistics. favorAttention and every mechanism that
   * takes a feature map call it, and dispose the returned map after the call.
   *
   * @param q - the queries of the call
   * @param k - the keys of the call
   * @param keep - [B, Lk] padding mask (1 keep, 0 pad), if any
   */
  prepare?(q: Tensor, k: Tensor, keep: Tensor | null): FeatureMap & { dispose(): void };
  /** Optional: release tensors the map caches (e.g. projections uploaded to a backend). */
  dispose?(): void;
}
