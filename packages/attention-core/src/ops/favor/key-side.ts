/**
 * The keys as FAVOR uses them (e^{ℓ_j − s}·base_j + floor, the stabilizer s chosen by attention)
 * and the checks every path applies to a map's features.
 */
import {
  describeValue,
  type FeatureMap,
  isTensor,
  shapeString,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { expBelow, keyFloor, NO_KEY_YET } from '../../tensor/masking.js';

/**
 * Key features of one block of groups as attention uses them: φ(k_j; s) = e^{ℓ_j − s}·base_j + floor.
 * Maps with keyParts (and the default key stabilizer) give base and ℓ, padded keys' ℓ set to
 * NO_KEY_YET so that they never move the stabilizer s, which attention takes over the keys each
 * query sees. Position-local maps (and performer-pytorch's global stabilizer) give their features
 * as they are: logScale null, the floor split off where the map offers it.
 */
export interface KeySide {
  /** [G, Lk, m'] */
  base: tf.Tensor;
  /** [G, Lk, 1] or null */
  logScale: tf.Tensor | null;
  floor: number;
}

export function keySide(
  fn: string,
  phi: FeatureMap,
  k: tf.Tensor,
  keep: tf.Tensor | null,
  globalAsParts = false,
): KeySide {
  const [G, Lk] = k.shape as [number, number, number];
  if (typeof phi.keyParts === 'function' && (phi.keyStabilizer !== 'global' || globalAsParts)) {
    const parts = phi.keyParts(k);
    if (
      !isTensor(parts?.base) ||
      !isTensor(parts.logScale) ||
      parts.base.rank !== 3 ||
      parts.base.shape[0] !== G ||
      parts.base.shape[1] !== Lk ||
      parts.logScale.rank !== 3 ||
      parts.logScale.shape[1] !== Lk ||
      parts.logScale.shape[2] !== 1 ||
      !(Number.isFinite(parts.floor) && parts.floor >= 0)
    ) {
      throw new RangeError(
        `${fn}: featureMap ${phi.name} keyParts must map [G, L, d] = ${shapeString(k.shape)} to { base [G, L, m'], logScale [G, L, 1], floor >= 0 }, got base ${describeValue(parts?.base)} and logScale ${describeValue(parts?.logScale)}`,
      );
    }
    const logScale =
      keep === null
        ? parts.logScale
        : tf.where(
            tf.cast(keep, 'bool'),
            parts.logScale,
            tf.fill(parts.logScale.shape, NO_KEY_YET),
          );
    return { base: parts.base, logScale, floor: keyFloor(parts.floor) };
  }
  const split = typeof phi.featuresWithoutFloor === 'function' && (phi.floor ?? 0) !== 0;
  const base = split ? phi.featuresWithoutFloor!(k, 'key') : phi.features(k, 'key');
  checkFeatures(fn, phi, base, 'key', [G, Lk]);
  return { base, logScale: null, floor: split ? phi.floor! : 0 };
}

/** Bidirectional keys: the per-key factor e^{ℓ_j − s} (s = max over unpadded keys), times keep. */
export function bidirectionalKeyScale(side: KeySide, keep: tf.Tensor | null): tf.Tensor | null {
  if (side.logScale === null) return keep;
  const scale = expBelow(side.logScale, tf.max(side.logScale, [1, 2], true));
  return keep === null ? scale : tf.mul(scale, keep);
}

/** φ(k) in full, [G, Lk, m'] (bidirectional), padded rows zero. */
export function bidirectionalKeyFeatures(side: KeySide, keep: tf.Tensor | null): tf.Tensor {
  const scale = bidirectionalKeyScale(side, keep);
  let kf = scale === null ? side.base : tf.mul(side.base, scale);
  if (side.floor !== 0) kf = tf.add(kf, keep === null ? side.floor : tf.mul(keep, side.floor));
  return kf;
}

/**
 * A map's features must be float32 [G, L, m'] tensors, with one m' for queries and keys (`width`,
 * when the other role's is known): a user map that returns anything else gets an error naming it.
 */
export function checkFeatures(
  fn: string,
  phi: FeatureMap,
  f: unknown,
  role: 'query' | 'key',
  lead: [number, number],
  width?: number,
): asserts f is tf.Tensor3D {
  const ok =
    isTensor(f) &&
    f.rank === 3 &&
    f.shape[0] === lead[0] &&
    f.shape[1] === lead[1] &&
    f.dtype === 'float32' &&
    (width === undefined || f.shape[2] === width);
  if (!ok) {
    throw new RangeError(
      `${fn}: featureMap ${phi.name} must map [G, L, d] to float32 [G, L, m'] with the same m' for queries and keys: its ${role} features should be [${lead.join(',')},${width ?? "m'"}], got ${describeValue(f)}`,
    );
  }
}
