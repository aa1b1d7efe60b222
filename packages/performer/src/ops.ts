import * as tf from '@tensorflow/tfjs-core';

/** The building blocks PerformerLM and the tfjs-layers layers share. */

const LN_EPS = 1e-5; // PyTorch's LayerNorm default

/** LayerNorm over the last axis. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, LN_EPS))), gamma), beta);
}

/** GELU with the exact erf (PyTorch's default). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** x [..., in] · w [in, out] (+ b) → [..., out] as one 2-D matmul. */
export function dense(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const y = matMul2d(tf.reshape(x, [-1, x.shape[x.rank - 1]!]) as tf.Tensor2D, w as tf.Tensor2D);
  return tf.reshape(b ? tf.add(y, b) : y, [...lead, w.shape[1]!]);
}

/**
 * a [n, k] · b [k, p] whose gradients are also plain products of explicit transposes
 * (dy·bᵀ and aᵀ·dy). tfjs's own gradient multiplies with transpose flags, which the wasm backend
 * runs about 14× slower than an unflagged 2-D product; transposing first is cheap at these sizes.
 */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([x, w]); // the forward's tidy frees its intermediates before the backward pass runs
    return {
      value: tf.matMul(x, w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [
          tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)),
          tf.matMul(tf.transpose(xs), dy as tf.Tensor2D),
        ];
      },
    };
  });
  // tfjs's test mode (IS_TEST) counts the clones that `save` keeps for the backward pass as a
  // kernel's leaked data on wasm (its clone copies); they are freed after backprop like any saved
  // tensor, so its check is switched off for this one call and restored
  const env = tf.env();
  const testMode = env.getBool('IS_TEST');
  if (testMode) env.set('IS_TEST', false);
  try {
    return product(a, b) as tf.Tensor2D;
  } finally {
    if (testMode) env.set('IS_TEST', true);
  }
}

/** R [dh, dh] with t·R = rotate_every_two(t): pairs (t0, t1) → (−t1, t0). */
export function rotateEveryTwo(dh: number): tf.Tensor2D {
  const r = new Float32Array(dh * dh);
  for (let i = 0; i < dh; i += 2) {
    r[(i + 1) * dh + i] = -1; // out[i] = −t[i+1]
    r[i * dh + i + 1] = 1; // out[i+1] = t[i]
  }
  return tf.tensor2d(r, [dh, dh]);
}

/**
 * Rotary position embedding of t [..., N, dh] with `rows` [N, dh] of the sinusoid table (per row
 * [sin half | cos half], each value repeated twice: s0 s0 s1 s1 …) and R = rotateEveryTwo(dh):
 * t·cos + rotate_every_two(t)·sin.
 */
export function applyRotary(t: tf.Tensor, rows: tf.Tensor, R: tf.Tensor): tf.Tensor {
  const [N, dh] = rows.shape as [number, number];
  const twice = (x: tf.Tensor) =>
    tf.reshape(tf.tile(tf.reshape(x, [N, dh / 2, 1]), [1, 1, 2]), [N, dh]);
  const sin = twice(tf.slice(rows, [0, 0], [N, dh / 2]));
  const cos = twice(tf.slice(rows, [0, dh / 2], [N, dh / 2]));
  return tf.add(tf.mul(t, cos), tf.mul(dense(t, R), sin));
}
