/** favorAttention's options, resolved once into one typed object, and the checks of its map. */
import type { FeatureMap } from '@kernel-attention/feature-maps';
import {
  type AttentionShapes,
  validateChunkSize,
  validateNonNegative,
} from '../../tensor/validate.js';
import { DEFAULT_CHUNK_SIZE } from '../linear-attention.js';

/** Default causalFitLength. */
export const DEFAULT_CAUSAL_FIT_LENGTH = 128;

/** Default featureBlockSize: up to this length one pass is fastest; beyond, passes outgrow the cache. */
export const DEFAULT_FEATURE_BLOCK = 4096;

/** The settings of one favorAttention call, resolved and checked. */
export interface FavorSettings {
  causal: boolean;
  /** Causal: positions per chunk of the prefix sums. */
  chunkSize: number;
  /** Added to the denominator's key sums (performer-pytorch's causal eps), 0 for none. */
  denominatorEps: number;
  /** Bidirectional: longest run of positions whose features are computed at once. */
  featureBlock: number;
  /** Causal, data-dependent maps: the fit sees the first min(L, causalFitLength) positions. */
  causalFitLength: number;
  /** Bidirectional: variance-aware shrinkage toward mean(v). */
  shrinkage: boolean;
}

/** What favorAttention's options may hold (checked by resolveFavorSettings). */
export interface FavorSettingsOptions {
  causal?: boolean;
  chunkSize?: number;
  denominatorEps?: number;
  featureBlockSize?: number;
  causalFitLength?: number;
  shrinkage?: boolean;
}

/**
 * The options as one checked FavorSettings (defaults filled in); errors name the option.
 *
 * @param fn - the op's name, for messages
 * @param opts - the call's options
 */
export function resolveFavorSettings(fn: string, opts: FavorSettingsOptions): FavorSettings {
  const causal = opts.causal ?? false;
  if (opts.shrinkage && causal) {
    throw new RangeError(`${fn}: shrinkage is for bidirectional attention, got causal: true`);
  }
  return {
    causal,
    chunkSize: validateChunkSize(fn, opts.chunkSize) ?? DEFAULT_CHUNK_SIZE,
    denominatorEps: validateNonNegative(fn, opts.denominatorEps, 'denominatorEps'),
    featureBlock:
      validateChunkSize(fn, opts.featureBlockSize, 'featureBlockSize') ?? DEFAULT_FEATURE_BLOCK,
    causalFitLength:
      validateChunkSize(fn, opts.causalFitLength, 'causalFitLength') ?? DEFAULT_CAUSAL_FIT_LENGTH,
    shrinkage: opts.shrinkage === true,
  };
}

/**
 * Checks that `featureMap` is a FeatureMap (has features(x, role)).
 *
 * @param fn - the op's name, for the message
 * @param featureMap - what the caller passed
 */
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
 * The features per position a map gives (m'), for sizing blocks: its numFeatures, or — for a map
 * that learns its width from its first input and cannot tell yet — max(d, 64).
 *
 * @param phi - the feature map
 * @param shapes - the call's sizes (d)
 */
export function featureWidth(phi: FeatureMap, shapes: Pick<AttentionShapes, 'dim'>): number {
  const fallback = Math.max(shapes.dim, 64);
  try {
    return phi.numFeatures ?? fallback;
  } catch {
    return fallback; // e.g. a deterministic map that learns d from its first input
  }
}
