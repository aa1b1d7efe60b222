import { matMul } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';

/** Matrix products of groups of matrices, on the fast path of each backend. */

/**
 * Matrix product of [G, M, K] and [G, K, N] (batched over G). For G = 1 it runs as a 2-D product:
 * tfjs-wasm's fast (XNNPACK) path is the 2-D product without transpose flags, about 14× faster
 * than its batched product at these shapes (see docs/performance.md).
 */
export function groupMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  const [G, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  if (G === 1) {
    return tf.reshape(matMul(tf.reshape(a, [M, K]), tf.reshape(b, [K, N])), [1, M, N]);
  }
  return matMul(a as tf.Tensor3D, b as tf.Tensor3D);
}

/** [G, M, N] → [G, N, M]. */
export function transposeLast(x: tf.Tensor): tf.Tensor3D {
  return tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;
}
