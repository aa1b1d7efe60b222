import { type FeatureMap, shapeString } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { groupsPerBlock, maskForGroups, rangeTaker } from './groups.js';
import {
  attendBlock,
  DEFAULT_CHUNK_SIZE,
  type LinearAttentionOptions,
} from './linear-attention.js';
import { validateChunkSize, validateMask, validateQkv } from './validate.js';

export interface FavorAttentionOptions extends LinearAttentionOptions {
  /** φ: any FeatureMap (positiveSoftmax for FAVOR+, or your own). */
  featureMap: FeatureMap;
}

export function assertFeatureMap(
  fn: string,
  featureMap: unknown,
): asserts featureMap is FeatureMap {
  const f = featureMap as FeatureMap | undefined;
  if (typeof f !== 'object' || f === null || typeof f.features !== 'function') {
    throw new TypeError(
      `${fn}: featureMap must implement FeatureMap (features(x, role)), got ${f === null ? 'null' : typeof f}`,
    );
  }
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
  if (typeof opts !== 'object' || opts === null)
    throw new TypeError(`${fn}: options { featureMap } are required`);
  assertFeatureMap(fn, opts.featureMap);
  const causal = opts.causal ?? false;
  const shapes = validateQkv(fn, q, k, v, { causal });
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  const chunkSize = validateChunkSize(fn, opts.chunkSize) ?? DEFAULT_CHUNK_SIZE;
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk, dim: d, valueDim: dv } = shapes;
  const phi = opts.featureMap;
  return tf.tidy(() => {
    const takeQ = rangeTaker(tf.reshape(q, [B * H, Lq, d]), 0);
    const takeK = rangeTaker(tf.reshape(k, [B * H, Lk, d]), 0);
    const takeV = rangeTaker(tf.reshape(v, [B * H, Lk, dv]), 0);
    const width = safeNumFeatures(phi) ?? Math.max(d, 64);
    const G = groupsPerBlock(B * H, Math.max(Lq, Lk), width);
    const outs: tf.Tensor[] = [];
    for (let g0 = 0; g0 < B * H; g0 += G) {
      const size = Math.min(G, B * H - g0);
      outs.push(
        tf.tidy(() => {
          const qb = takeQ(g0, size);
          let kb = takeK(g0, size);
          let vb = takeV(g0, size);
          let keep: tf.Tensor | null = null;
          if (opts.mask !== undefined) {
            keep = maskForGroups(opts.mask, g0, size, H);
            const keepK = tf.broadcastTo(tf.cast(keep, 'bool'), kb.shape);
            kb = tf.where(keepK, kb, tf.zerosLike(kb));
            vb = tf.where(tf.broadcastTo(tf.cast(keep, 'bool'), vb.shape), vb, tf.zerosLike(vb));
          }
          // bidirectional: add a map's constant floor on the small products, not on every feature
          const floor =
            !causal && typeof phi.featuresWithoutFloor === 'function' ? (phi.floor ?? 0) : 0;
          const qf =
            floor !== 0 ? phi.featuresWithoutFloor!(qb, 'query') : phi.features(qb, 'query');
          let kf = floor !== 0 ? phi.featuresWithoutFloor!(kb, 'key') : phi.features(kb, 'key');
          assertFeatures(fn, phi, qf, kf, [size, Lq], [size, Lk]);
          if (keep !== null) kf = tf.mul(kf, keep);
          return attendBlock(qf, kf, vb, causal, chunkSize, { floor, keep });
        }),
      );
    }
    return tf.reshape(outs.length === 1 ? outs[0]! : tf.concat(outs, 0), [B, H, Lq, dv]);
  });
}

function safeNumFeatures(phi: FeatureMap): number | undefined {
  try {
    return phi.numFeatures;
  } catch {
    return undefined; // e.g. a deterministic map that learns d from its first input
  }
}

/** A user map must return [G, L, m'] with one m' for queries and keys. */
function assertFeatures(
  fn: string,
  phi: FeatureMap,
  qf: tf.Tensor,
  kf: tf.Tensor,
  qLead: number[],
  kLead: number[],
): void {
  const ok = (t: tf.Tensor, lead: number[]) =>
    t.rank === 3 && t.shape[0] === lead[0] && t.shape[1] === lead[1];
  if (
    !ok(qf, qLead) ||
    !ok(kf, kLead) ||
    qf.shape[2] !== kf.shape[2] ||
    qf.dtype !== 'float32' ||
    kf.dtype !== 'float32'
  ) {
    throw new RangeError(
      `${fn}: featureMap ${phi.name} must map [G, L, d] to float32 [G, L, m'] with the same m' for queries and keys, got query features ${shapeString(qf.shape)} (${qf.dtype}) and key features ${shapeString(kf.shape)} (${kf.dtype})`,
    );
  }
}
