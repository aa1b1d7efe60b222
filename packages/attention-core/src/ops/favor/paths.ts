/**
 * The ways FAVOR attends one block of (batch, head) groups, as one tagged union: chooseFavorPath
 * picks one from the call's settings and the map's abilities, runFavorPath runs it. Every path
 * computes the same estimate (the parity suite checks them against each other and the Float64
 * references); they differ in what they materialise and which kernels they reach.
 */
import {
  BidirectionalLinearAttention,
  type FeatureMap,
  hasFusedKernel,
} from '@kernel-attention/feature-maps';
import type * as tf from '@tensorflow/tfjs-core';
import type { GroupInputs } from '../fitted-maps.js';
import { attendBlock } from '../linear-attention.js';
import { blockedBidirectional } from './blocked-bidirectional.js';
import {
  bidirectionalKeyFeatures,
  bidirectionalKeyScale,
  checkFeatures,
  type KeySide,
  keySide,
} from './key-side.js';
import type { FavorSettings } from './settings.js';
import { shrunkToMean } from './shrinkage.js';

export type FavorPath =
  /** Bidirectional, with variance-aware shrinkage toward mean(v) (the `shrinkage` option). */
  | { kind: 'shrinkage' }
  /** Bidirectional and longer than featureBlockSize: features computed block by block. */
  | { kind: 'blocked'; block: number }
  /** Causal: chunked prefix sums with the exactly causal key stabilizer (fused where registered). */
  | { kind: 'causal' }
  /**
   * Bidirectional with the key features in full: where a fused bidirectional kernel is registered
   * (it takes plain features) or a denominator eps needs them.
   */
  | { kind: 'full-keys' }
  /** Bidirectional: query features as row scale ⊙ rows (maps with factoredFeatures). */
  | { kind: 'factored' }
  /** Bidirectional: features with their scales and floors folded into the small products. */
  | { kind: 'folded' };

/**
 * The path for one block.
 *
 * @param map - the (fitted) feature map of this run
 * @param inputs - the block's inputs
 * @param s - the call's settings
 */
export function chooseFavorPath(map: FeatureMap, inputs: GroupInputs, s: FavorSettings): FavorPath {
  if (s.shrinkage) return { kind: 'shrinkage' };
  if (s.causal) return { kind: 'causal' };
  const L = Math.max(inputs.q.shape[1]!, inputs.k.shape[1]!);
  if (L > s.featureBlock && s.denominatorEps === 0 && inputs.keyWeights === null) {
    return { kind: 'blocked', block: s.featureBlock };
  }
  if (hasFusedKernel(BidirectionalLinearAttention) || s.denominatorEps !== 0) {
    return { kind: 'full-keys' };
  }
  return typeof map.factoredFeatures === 'function' ? { kind: 'factored' } : { kind: 'folded' };
}

/**
 * Runs a path: q [G, Lq, d], k [G, Lk, d], v [G, Lk, dv] → [G, Lq, dv].
 *
 * @param path - what chooseFavorPath chose
 * @param fn - the op's name, for messages
 * @param map - the (fitted) feature map
 * @param inputs - the block's inputs
 * @param s - the call's settings
 */
export function runFavorPath(
  path: FavorPath,
  fn: string,
  map: FeatureMap,
  inputs: GroupInputs,
  s: FavorSettings,
): tf.Tensor {
  const { q, k, v, keep } = inputs;
  if (path.kind === 'shrinkage') return shrunkToMean(fn, map, q, k, v, keep);
  if (path.kind === 'blocked') return blockedBidirectional(fn, map, q, k, v, keep, path.block);
  // the other paths take the whole key side at once
  const side = keySide(fn, map, k, keep);
  switch (path.kind) {
    case 'causal':
      return causalPath(fn, map, inputs, side, s);
    case 'full-keys':
      return fullKeysPath(fn, map, inputs, side, s);
    case 'factored':
      return factoredPath(fn, map, inputs, side, s);
    case 'folded':
      return foldedPath(fn, map, inputs, side, s);
  }
}

/** Query features, checked against the keys' width. */
function queryFeatures(fn: string, map: FeatureMap, q: tf.Tensor, side: KeySide): tf.Tensor {
  const qf = map.features(q, 'query');
  checkFeatures(fn, map, qf, 'query', [q.shape[0]!, q.shape[1]!], side.base.shape[2]);
  return qf;
}

function causalPath(fn: string, map: FeatureMap, i: GroupInputs, side: KeySide, s: FavorSettings) {
  return attendBlock(queryFeatures(fn, map, i.q, side), side.base, i.v, true, s.chunkSize, {
    keep: i.keep,
    kLog: side.logScale,
    floor: side.floor,
    keyWeights: i.keyWeights,
    denominatorEps: s.denominatorEps,
  });
}

function fullKeysPath(
  fn: string,
  map: FeatureMap,
  i: GroupInputs,
  side: KeySide,
  s: FavorSettings,
) {
  const qf = queryFeatures(fn, map, i.q, side);
  return attendBlock(qf, bidirectionalKeyFeatures(side, i.keep), i.v, false, s.chunkSize, {
    keep: i.keep,
    keyWeights: i.keyWeights,
    denominatorEps: s.denominatorEps,
  });
}

function factoredPath(
  fn: string,
  map: FeatureMap,
  i: GroupInputs,
  side: KeySide,
  s: FavorSettings,
) {
  const fq = map.factoredFeatures!(i.q, 'query'); // query features as scale ⊙ rows + their floor
  checkFeatures(fn, map, fq.rows, 'query', [i.q.shape[0]!, i.q.shape[1]!], side.base.shape[2]);
  return attendBlock(fq.rows, side.base, i.v, false, s.chunkSize, {
    floor: side.floor,
    queryFloor: fq.floor,
    keep: i.keep,
    keyWeights: i.keyWeights,
    qScale: fq.scale,
    kScale: bidirectionalKeyScale(side, i.keep) ?? undefined,
  });
}

function foldedPath(fn: string, map: FeatureMap, i: GroupInputs, side: KeySide, s: FavorSettings) {
  const splitQuery = typeof map.featuresWithoutFloor === 'function' && (map.floor ?? 0) !== 0;
  const qf = splitQuery ? map.featuresWithoutFloor!(i.q, 'query') : map.features(i.q, 'query');
  checkFeatures(fn, map, qf, 'query', [i.q.shape[0]!, i.q.shape[1]!], side.base.shape[2]);
  return attendBlock(qf, side.base, i.v, false, s.chunkSize, {
    floor: side.floor,
    queryFloor: splitQuery ? map.floor! : 0,
    keep: i.keep,
    keyWeights: i.keyWeights,
    kScale: bidirectionalKeyScale(side, i.keep) ?? undefined,
  });
}
