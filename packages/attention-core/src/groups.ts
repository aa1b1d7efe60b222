import * as tf from '@tensorflow/tfjs-core';

/**
 * Helpers for walking [B·H, L, ·] tensors group by group and chunk by chunk.
 *
 * Why not tf.slice: on the wasm backend (tfjs 4.22) Slice reads the *whole* source tensor out of
 * the wasm heap before copying the part it needs, so taking many small pieces of a large tensor
 * costs O(pieces × source). Gather is a native kernel whose cost is the size of its output.
 * Other backends slice cheaply (webgl even without a copy), so they keep tf.slice.
 */
export function takeRange(x: tf.Tensor, axis: number, start: number, size: number): tf.Tensor {
  if (start === 0 && size === x.shape[axis]) return x;
  if (tf.getBackend() === 'wasm') {
    // Gather's registered gradient needs UnsortedSegmentSum, which wasm lacks; the gradient of
    // taking a contiguous range is zero-padding dy back to x's shape.
    const paddings = x.shape.map(
      (s, i) => (i === axis ? [start, s - start - size] : [0, 0]) as [number, number],
    );
    const take = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.gather(args[0] as tf.Tensor, tf.range(start, start + size, 1, 'int32'), axis),
      gradFunc: (dy: tf.Tensor) => tf.pad(dy, paddings),
    }));
    return take(x);
  }
  const begin = x.shape.map((_, i) => (i === axis ? start : 0));
  const sizes = x.shape.map((s, i) => (i === axis ? size : s));
  return tf.slice(x, begin, sizes);
}

/**
 * Matrix product of [G, M, K] and [G, K, N] (batched over G). For G = 1 it runs as a 2-D product:
 * tfjs-wasm's fast (XNNPACK) path is the 2-D product without transpose flags, about 14× faster
 * than its batched product at these shapes (see docs/performance.md).
 */
export function groupMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  const [G, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  if (G === 1) {
    return tf.reshape(tf.matMul(tf.reshape(a, [M, K]), tf.reshape(b, [K, N])), [1, M, N]);
  }
  return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D);
}

/** [G, M, N] → [G, N, M]. */
export function transposeLast(x: tf.Tensor): tf.Tensor3D {
  return tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;
}

/** Elements of one feature-sized intermediate that one group block may hold (16 MiB of float32). */
export const BLOCK_BUDGET = 1 << 22;

/**
 * How many (batch, head) groups to process together. On wasm, long sequences go one group at a
 * time (2-D products); otherwise as many groups as fit the budget go through batched products,
 * which saves per-op overhead for short sequences and on GPU backends.
 */
export function groupsPerBlock(totalGroups: number, length: number, width: number): number {
  if (tf.getBackend() === 'wasm' && length >= 256) return 1;
  return Math.max(1, Math.min(totalGroups, Math.floor(BLOCK_BUDGET / Math.max(1, length * width))));
}

/** Mask rows [G, L, 1] (float 0/1) for groups g0..g0+G−1 of a [B, L] mask with H heads per batch. */
export function maskForGroups(mask: tf.Tensor, g0: number, G: number, heads: number): tf.Tensor3D {
  const batchOf = Int32Array.from({ length: G }, (_, i) => Math.floor((g0 + i) / heads));
  const m = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
  const keep = tf.cast(tf.notEqual(m, 0), 'float32');
  return tf.expandDims(tf.gather(keep, tf.tensor1d(batchOf, 'int32'), 0), 2) as tf.Tensor3D;
}

/**
 * num / den where den ≠ 0, else 0 (every key of a query padded): finite and differentiable.
 * The condition is built as −|den| ≥ 0 because tfjs registers a gradient for GreaterEqual but
 * not for NotEqual, and the condition lies on the path from the inputs to the output.
 */
export function safeDivide(num: tf.Tensor, den: tf.Tensor): tf.Tensor {
  const zero = tf.greaterEqual(tf.neg(tf.abs(den)), 0);
  const safeDen = tf.where(zero, tf.onesLike(den), den);
  return tf.where(tf.broadcastTo(zero, num.shape), tf.zerosLike(num), tf.div(num, safeDen));
}
