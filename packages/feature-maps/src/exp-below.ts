import * as tf from '@tensorflow/tfjs-core';

/**
 * e^{a − b} for a ≤ b (a stabilized exponent), computed as e^{min(a − b, 0)}. The clamp changes no
 * value, but keeps lanes that hold no value finite: tfjs-webgl's packed textures pad odd
 * dimensions, the padding of a − b can be huge (0 minus a very negative stabilizer), and
 * e^{+big} = ∞ there times a zero in a later packed matmul's inner dimension is NaN in real rows.
 */
export function expBelow(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.exp(tf.minimum(tf.sub(a, b), 0));
}
