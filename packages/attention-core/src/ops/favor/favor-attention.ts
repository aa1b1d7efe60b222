/**
 * favorAttention, top to bottom: check the call and resolve its settings once; join persistent
 * memory; then, block by block of (batch, head) groups, fit a data-dependent map (fitted-maps.ts),
 * choose the path (paths.ts) and run it.
 */
import { assertOptions, type FeatureMap } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { groupsPerBlock, mapGroupBlocks, maskForGroups } from '../../tensor/group-blocks.js';
import { type CheckedInputs, validateMask, validateQkv } from '../../tensor/validate.js';
import { fitRuns, type GroupInputs } from '../fitted-maps.js';
import type { LinearAttentionOptions } from '../linear-attention.js';
import {
  dropPlaceholders,
  joinMemory,
  type PersistentMemory,
  validateMemory,
} from '../persistent-memory.js';
import { chooseFavorPath, runFavorPath } from './paths.js';
import {
  assertFeatureMap,
  type FavorSettings,
  featureWidth,
  resolveFavorSettings,
} from './settings.js';

export {
  assertFeatureMap,
  DEFAULT_CAUSAL_FIT_LENGTH,
  DEFAULT_FEATURE_BLOCK,
  type FavorSettings,
} from './settings.js';

export interface FavorAttentionOptions extends LinearAttentionOptions {
  /** φ: any FeatureMap (positiveSoftmax for FAVOR+, or your own). */
  featureMap: FeatureMap;
  /**
   * Bidirectional: longest run of positions whose features are computed at once (default 4096).
   * Longer sequences go block by block, keys accumulating φ(K)ᵀV with the key stabilizer kept as
   * a running max (exactly the sequence-wide stabilizer at the end), so memory holds no L×m
   * feature tensor and the passes stay cache-sized. Results do not depend on it.
   */
  featureBlockSize?: number;
  /**
   * Persistent memory (Sukhbaatar et al. 2019): N learned key/value slots per head, visible to
   * every query (also when causal). Their features seed the key-value state and the normaliser.
   */
  memory?: PersistentMemory;
  /**
   * Causal attention with a data-dependent map (one with `prepare`): the fit sees the first
   * min(L, causalFitLength) positions only (default 128), so no output depends on a later one;
   * queries before that use the unfitted map.
   */
  causalFitLength?: number;
  /**
   * Variance-aware shrinkage toward mean(v) (bidirectional only): the output becomes
   * λ·out + (1 − λ)·mean(v) per (batch, head), with λ = signal/(signal + noise) estimated from the
   * estimator itself — its noise from two independent halves of the features, its signal from
   * |out − mean(v)|² minus that noise. Lowers the error where the attention is close to uniform
   * and the features are few (see docs/guides/accuracy.md). Default false.
   */
  shrinkage?: boolean;
}

/**
 * FAVOR+ attention (Choromanski et al. 2020): linear attention on the features of a FeatureMap,
 * an unbiased-kernel estimate of softmax attention in O(L·m·d) time and O(L·m + m·d) memory:
 *   out = D⁻¹ (φ(Q) (φ(K)ᵀ V)),  D = diag(φ(Q) (φ(K)ᵀ 1))   (causal: prefix sums, chunked).
 * Padded keys (mask 0) are zeroed before φ, so they neither shift the key stabilizer nor count in
 * the numerator or denominator. Features are computed per block of (batch, head) groups, so
 * memory grows linearly in L.
 *
 * q, k [B, H, L, d], v [B, H, L, dv] → [B, H, L, dv].
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ featureMap, causal, mask, chunkSize, … }` (see FavorAttentionOptions); featureMap is required
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
 * import { favorAttention } from '@kernel-attention/core';
 * const featureMap = softmaxKernelFeatures(64, 256, { seed: 0 });
 * const q = tf.randomNormal([1, 8, 1024, 64], 0, 0.5);
 * const out = favorAttention(q, q, q, { featureMap, causal: true }); // [1, 8, 1024, 64]
 * ```
 */
export function favorAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: FavorAttentionOptions,
): tf.Tensor4D {
  const fn = 'favorAttention';
  // 1. check the call; resolve its settings once
  assertOptions(fn, opts, '{ featureMap }');
  assertFeatureMap(fn, opts.featureMap);
  const shapes = validateQkv(fn, q, k, v, { causal: opts.causal ?? false });
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  if (opts.memory !== undefined) validateMemory(fn, opts.memory, shapes);
  const settings = resolveFavorSettings(fn, opts);
  return tf.tidy(() => {
    // 2. persistent memory joins the keys (causal: behind placeholder queries)
    const joined = joinMemory({ q, k, v, mask: opts.mask, shapes }, opts.memory, settings.causal);
    // 3. block by block: fit, choose the path, run it
    const out = attendFavor(fn, opts.featureMap, joined.inputs, settings);
    return dropPlaceholders(out, joined);
  });
}

/**
 * FAVOR on checked inputs, block by block of (batch, head) groups: favorAttention's step 3, and
 * gated attention's path (`keyWeights` [B, Lk] multiply each key's features). Call inside a tidy.
 *
 * @param fn - the op's name, for messages
 * @param phi - the feature map
 * @param inputs - the checked call
 * @param settings - the resolved settings
 * @param keyWeights - [B, Lk] weights of the keys' features, or undefined
 */
export function attendFavor(
  fn: string,
  phi: FeatureMap,
  inputs: CheckedInputs,
  settings: FavorSettings,
  keyWeights?: tf.Tensor,
): tf.Tensor4D {
  const { q, k, v, mask, shapes } = inputs;
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk } = shapes;
  const groups = groupsPerBlock(B * H, Math.max(Lq, Lk), featureWidth(phi, shapes));
  return mapGroupBlocks(q, k, v, mask, shapes, groups, (block) => {
    const weights =
      keyWeights === undefined ? null : maskForGroups(keyWeights, block.g0, block.size, H, false);
    return attendGroups(fn, phi, { ...block, keyWeights: weights }, settings);
  });
}

/** One block of groups: every run of the fitting plan, each on its path; their kept rows joined. */
function attendGroups(
  fn: string,
  phi: FeatureMap,
  inputs: GroupInputs,
  settings: FavorSettings,
): tf.Tensor {
  const parts = fitRuns(phi, inputs, settings.causal, settings.causalFitLength).map((run) => {
    try {
      const out = runFavorPath(
        chooseFavorPath(run.map, run.inputs, settings),
        fn,
        run.map,
        run.inputs,
        settings,
      );
      const [from, to] = run.rows;
      return from === 0 && to === out.shape[1]
        ? out
        : tf.slice(out, [0, from, 0], [-1, to - from, -1]);
    } finally {
      run.release();
    }
  });
  return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
}
