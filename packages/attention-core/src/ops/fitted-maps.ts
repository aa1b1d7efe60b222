/**
 * The fitted-map protocol: feature maps with `prepare` (OPRF, the dense-exponential maps) fit
 * their parameters to one call's queries and keys. Every op that takes a feature map goes through
 * here, so that the rule is the same everywhere: bidirectional attention fits on the whole call;
 * causal attention may not let the fit see the future.
 */
import type { FeatureMap } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { checkFeatures, type KeySide, keySide } from './favor/key-side.js';

/** One block of (batch, head) groups: q [G, Lq, d], k [G, Lk, d], v [G, Lk, dv], keep [G, Lk, 1]. */
export interface GroupInputs {
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  keep: tf.Tensor | null;
  /** [G, Lk, 1] weights of the keys' features (gated attention), or null. */
  keyWeights: tf.Tensor | null;
}

/** One attention run of a fitting plan: the map, the inputs it sees, the output rows it gives. */
export interface FitRun {
  map: FeatureMap;
  inputs: GroupInputs;
  /** The rows [from, to) of this run's output that the call keeps. */
  rows: [number, number];
  /** Frees the fitted map (nothing for an unfitted one). */
  release(): void;
}

/** The first P positions of every input (keys, values, masks and weights alike). */
function head(inputs: GroupInputs, P: number): GroupInputs {
  const take = (x: tf.Tensor) => tf.slice(x, [0, 0, 0], [-1, P, -1]);
  return {
    q: take(inputs.q),
    k: take(inputs.k),
    v: take(inputs.v),
    keep: inputs.keep === null ? null : take(inputs.keep),
    keyWeights: inputs.keyWeights === null ? null : take(inputs.keyWeights),
  };
}

/** `phi` fitted to these queries and keys (released after use). */
function fitted(
  phi: FeatureMap,
  { q, k, keep }: Pick<GroupInputs, 'q' | 'k' | 'keep'>,
): { map: FeatureMap; release(): void } {
  const map = phi.prepare!(q, k, keep);
  return { map, release: () => map.dispose() };
}

const unfitted = (phi: FeatureMap) => ({ map: phi, release() {} });

/**
 * The runs that attend one block with `phi`. A map without `prepare`: one run, as it is.
 * Bidirectional: one run, fitted to all the block's queries and keys. Causal: the fit may not see
 * the future, so it is made on the first P = min(L, causalFitLength) positions only — queries
 * before P use the unfitted map (over keys before P), queries from P on the fitted one (over all
 * keys up to themselves): every output depends on no later position, and each query's estimate
 * uses one parameter set for all its keys. Concatenating the runs' kept rows gives the output.
 *
 * @param phi - the call's feature map
 * @param inputs - one block of groups
 * @param causal - whether the call is causal
 * @param causalFitLength - causal: the positions the fit may see
 */
export function fitRuns(
  phi: FeatureMap,
  inputs: GroupInputs,
  causal: boolean,
  causalFitLength: number,
): FitRun[] {
  const L = inputs.q.shape[1]!;
  if (typeof phi.prepare !== 'function') return [{ ...unfitted(phi), inputs, rows: [0, L] }];
  if (!causal) return [{ ...fitted(phi, inputs), inputs, rows: [0, L] }];
  const P = Math.min(L, causalFitLength);
  if (P >= L) return [{ ...unfitted(phi), inputs, rows: [0, L] }];
  const early = head(inputs, P);
  return [
    { ...unfitted(phi), inputs: early, rows: [0, P] },
    { ...fitted(phi, early), inputs, rows: [P, L] },
  ];
}

/**
 * Query features [G, Lq, m'] and the key side (keySide) for mechanisms that take a feature map
 * and compute attention themselves (rpeFavorAttention): fitted to the call in bidirectional
 * attention; causal attention uses the unfitted map, which cannot see the future.
 *
 * @param fn - the op's name, for messages
 * @param phi - the feature map
 * @param q - queries [G, Lq, d]
 * @param k - keys [G, Lk, d] (padded keys zeroed)
 * @param keep - [G, Lk, 1] (1 keep, 0 pad), or null
 * @param causal - whether the call is causal
 */
export function callFeatures(
  fn: string,
  phi: FeatureMap,
  q: tf.Tensor,
  k: tf.Tensor,
  keep: tf.Tensor | null,
  causal: boolean,
): [tf.Tensor, KeySide] {
  const { map, release } =
    causal || typeof phi.prepare !== 'function' ? unfitted(phi) : fitted(phi, { q, k, keep });
  try {
    const side = keySide(fn, map, k, keep);
    const qf = map.features(q, 'query');
    checkFeatures(fn, map, qf, 'query', [q.shape[0]!, q.shape[1]!], side.base.shape[2]);
    return [qf, side];
  } finally {
    release();
  }
}
