import * as tf from '@tensorflow/tfjs-core';
import { assertRole, groupsOf, halfSquaredNorm } from './exp-features.js';
import type { FeatureMap, FeatureRole, KeyParts } from './feature-map.js';
import { type Projection, ProjectionHolder } from './projection.js';
import { assertOptions } from './validate.js';

export interface TrigSoftmaxOptions {
  projection: Projection;
  /** Remove the exp(|x̂|²/2) factors' common scale (default true); see trigSoftmax. */
  stabilize?: boolean;
}

/**
 * Trigonometric random features for the softmax kernel (Rahimi & Recht 2007 applied to
 * exp(x·y) = exp(|x|²/2)·exp(|y|²/2)·exp(−|x−y|²/2)):
 * φ(x) = m^-1/2·exp(|x̂|²/2)·[cos u, sin u], u = W·x̂; numFeatures = 2m. Unbiased but not
 * positive: where the kernel value is small the estimate can be negative (the paper's Fig. 4).
 *
 * Stabilized (default): exp(|x̂|²/2 − s) with s = |x̂|²/2 of the row itself for queries and the
 * max over positions per (batch, head) for keys — constant factors that cancel in attention,
 * so inputs of large norm give finite features instead of exp overflow.
 *
 * @param opts - `{ projection, stabilize }` (see TrigSoftmaxOptions)
 *
 * @example
 * ```ts
 * import { gaussianIid } from '@kernel-attention/random-features';
 * import { trigSoftmax } from '@kernel-attention/feature-maps';
 * const phi = trigSoftmax({ projection: gaussianIid(128, 64, { seed: 0 }) });
 * phi.numFeatures; // 256
 * ```
 */
export function trigSoftmax(opts: TrigSoftmaxOptions): FeatureMap & { dispose(): void } {
  assertOptions('trigSoftmax', opts, '{ projection }');
  const name = 'trigSoftmax';
  const holder = new ProjectionHolder(name, opts.projection);
  const stabilize = opts.stabilize ?? true;
  const m = holder.rows;
  const logRatio = -0.5 * Math.log(m);

  /** [cos u, sin u] and ½|x̂|², as [N, 2m] and [N, 1]. */
  const parts = (x: tf.Tensor) => {
    const u = holder.project(`${name}.features`, x);
    const n = halfSquaredNorm(tf.reshape(x, [-1, holder.cols]) as tf.Tensor2D, holder.normalizer);
    return { cs: tf.concat([tf.cos(u), tf.sin(u)], 1), n };
  };

  return {
    name,
    numFeatures: 2 * m,
    features(x: tf.Tensor, role: FeatureRole): tf.Tensor {
      assertRole(name, role);
      return tf.tidy(() => {
        const { cs, n } = parts(x);
        const outShape = [...x.shape.slice(0, -1), 2 * m];
        let logScale: tf.Tensor;
        if (!stabilize) logScale = tf.add(n, logRatio);
        else if (role === 'query') logScale = tf.fill(n.shape, logRatio);
        else {
          const { groups, length } = groupsOf(x);
          const n3 = tf.reshape(n, [groups, length, 1]);
          logScale = tf.reshape(tf.add(tf.sub(n3, tf.max(n3, [1, 2], true)), logRatio), [-1, 1]);
        }
        return tf.reshape(tf.mul(cs, tf.exp(logScale)), outShape);
      });
    },
    keyParts(x: tf.Tensor): KeyParts {
      const out = tf.tidy(() => {
        const { cs, n } = parts(x);
        const lead = x.shape.slice(0, -1);
        return {
          base: tf.reshape(tf.mul(cs, Math.exp(logRatio)), [...lead, 2 * m]),
          logScale: tf.reshape(n, [...lead, 1]),
          floor: 0,
        };
      });
      return out;
    },
    dispose: () => holder.dispose(),
  };
}
