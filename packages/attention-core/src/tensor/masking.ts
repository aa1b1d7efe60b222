import { backendCapabilities, expBelow } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Masks and safe arithmetic: which keys a query sees, masked softmax, division that gives 0 where
 * no key is seen, and the stabilizer constants of attention.
 */

/**
 * num / den where den ≠ 0, else num (= 0 when every key of a query is padded): finite and
 * differentiable, with one pass over num. The condition is built as −|den| ≥ 0 because tfjs registers a gradient for GreaterEqual but
 * not for NotEqual, and the condition lies on the path from the inputs to the output.
 */
export function safeDivide(num: tf.Tensor, den: tf.Tensor): tf.Tensor {
  // den = 0 exactly only when every visible key's features are 0, and then num = 0 as well
  // (unless a value is NaN/Inf, which must propagate): dividing by 1 there gives 0.
  const zero = tf.greaterEqual(tf.neg(tf.abs(den)), 0);
  return tf.div(num, tf.where(zero, tf.onesLike(den), den));
}

/**
 * 0/1 float mask [rows, cols] with 1 where column j ≤ offset + row i (causal visibility of the
 * block of queries starting at position `offset`). Built in JS and uploaded: tfjs-wasm's
 * broadcasting comparisons (as in tf.linalg.bandPart) take seconds at these sizes.
 */
export function causalKeep(rows: number, cols: number, offset: number): tf.Tensor2D {
  // wasm copies uploads into its heap, so one scratch buffer can serve every call there; other
  // backends (cpu) may keep the array they are given, so they get a fresh one
  const n = rows * cols;
  let data: Float32Array;
  if (backendCapabilities().copiesUploads) {
    if (scratch.length < n) scratch = new Float32Array(n);
    data = scratch.subarray(0, n);
    data.fill(0);
  } else {
    data = new Float32Array(n);
  }
  for (let i = 0; i < rows; i++) data.fill(1, i * cols, i * cols + Math.min(cols, offset + i + 1));
  return tf.tensor2d(data, [rows, cols]);
}

let scratch = new Float32Array(0);

/**
 * "Minus infinity" for a running max of log-scales that stays finite in exp(a − b) (and
 * NO_KEY_YET − NO_KEY_YET = 0). −1e19, not −3e38: tfjs-webgl's max reduction starts from −1e20,
 * so a row of −3e38 would come back as −1e20.
 */
export const NO_KEY_YET = -1e19;

/** e^{a − b} for a ≤ b, clamped (see feature-maps' expBelow), for the ops. */
export { expBelow };

/**
 * The least floor attention gives stabilized key features (maps with keyParts, whose largest
 * feature over the keys a query sees is the map's ratio, m'^-1/2 ≥ 1e-2 in practice): 1e-30,
 * some 1e-28 of the largest product, so it changes no result above float32 resolution — except
 * where every product of a query with the keys it sees underflows (logits of hundreds and more).
 * There the weights become uniform over those keys: the output stays a convex combination of the
 * visible values instead of a row of zeros.
 */
export const MIN_KEY_FLOOR = 1e-30;

/** The floor attention uses for keyParts with `floor`. */
export function keyFloor(floor: number): number {
  return Math.max(floor, MIN_KEY_FLOOR);
}

/**
 * Softmax over the last axis where `allowed` (0/1, broadcastable to scores) is 1: exp(s − max over
 * allowed) on allowed entries, normalised; rows with nothing allowed give all zeros.
 */
export function maskedSoftmax(scores: tf.Tensor, allowed: tf.Tensor): tf.Tensor {
  const allowedB = tf.cast(tf.broadcastTo(allowed, scores.shape), 'bool');
  const masked = tf.where(allowedB, scores, tf.fill(scores.shape, -3e38));
  const e = tf.mul(expBelow(masked, tf.max(masked, -1, true)), tf.cast(allowedB, 'float32'));
  return tf.div(e, tf.maximum(tf.sum(e, -1, true), 1e-30));
}

/**
 * Which keys each query may see, as a 0/1 float tensor broadcastable to [B, H, Lq, Lk] scores:
 * [B, 1, 1, Lk] from a padding mask, [1, 1, Lq, Lk] when causal, their product for both; null when
 * every key is visible.
 */
export function visibleKeys(
  mask: tf.Tensor | undefined,
  causal: boolean,
  B: number,
  Lq: number,
  Lk: number,
): tf.Tensor | null {
  const pad =
    mask === undefined ? null : tf.reshape(tf.cast(tf.notEqual(mask, 0), 'float32'), [B, 1, 1, Lk]);
  if (!causal) return pad;
  const c = tf.reshape(causalKeep(Lq, Lk, 0), [1, 1, Lq, Lk]);
  return pad === null ? c : tf.mul(pad, c);
}
