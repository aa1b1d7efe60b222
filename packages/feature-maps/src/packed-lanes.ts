import * as tf from '@tensorflow/tfjs-core';
import { backendCapabilities } from './backend-capabilities.js';

/**
 * Two workarounds for tfjs-webgl's packed textures, which pad odd dimensions with lanes that hold
 * no value: packed elementwise ops compute on those lanes too (exp(0) = 1, x + c, …), and its
 * packed matMul reads them when it sums an odd shared dimension two entries at a time. Found by
 * the property suite (NaN and wrong products with 7 features); both are no-ops elsewhere.
 */

/**
 * e^{a − b} for a ≤ b (a stabilized exponent), computed as e^{min(a − b, 0)}. The clamp changes no
 * value, but keeps padding lanes finite: there a − b can be huge (0 minus a very negative
 * stabilizer), and e^{+big} = ∞ times a zero in a later matmul is NaN in real rows.
 *
 * @param a - the exponents
 * @param b - subtracted from a before exp, broadcast against it
 */
export function expBelow(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.exp(tf.minimum(tf.sub(a, b), 0));
}

/**
 * tf.matMul(a, b, transposeA, transposeB) that is right on tfjs-webgl too: an odd shared
 * dimension is padded with one real zero there, so the product reads no padding lane of either
 * operand. Every matrix product of the attention ops and feature maps goes through it.
 *
 * @param a - left matrix [..., n, k]
 * @param b - right matrix [..., k, p]
 * @param transposeA - use aᵀ
 * @param transposeB - use bᵀ
 */
export function matMul<T extends tf.Tensor>(
  a: T,
  b: tf.Tensor,
  transposeA = false,
  transposeB = false,
): T {
  const axisA = transposeA ? a.rank - 2 : a.rank - 1;
  const K = a.shape[axisA]!;
  if (K % 2 === 0 || !backendCapabilities().packedPaddingLanes) {
    return tf.matMul(a, b, transposeA, transposeB) as unknown as T;
  }
  const axisB = transposeB ? b.rank - 1 : b.rank - 2;
  // one zero slice appended by concat (tfjs-webgl's pad programs stop at rank 4; concat works
  // on any rank)
  const padAt = (x: tf.Tensor, axis: number) =>
    tf.concat([x, tf.zeros(x.shape.map((n, i) => (i === axis ? 1 : n)))], axis);
  return tf.matMul(padAt(a, axisA), padAt(b, axisB), transposeA, transposeB) as unknown as T;
}
