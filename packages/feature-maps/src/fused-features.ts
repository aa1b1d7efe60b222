import * as tf from '@tensorflow/tfjs-core';
import { PositiveFeatures, type PositiveFeaturesAttrs } from './kernel-names.js';
import { matMul } from './packed-lanes.js';

/**
 * Runs the registered fused feature kernel (kernel-names.ts) with its vector-Jacobian product
 * written out in tfjs ops (tfjs cannot nest tf.grads inside a gradient function). With
 * e = φ − floor, u = x·P and g the incoming gradient:
 *   ∂/∂u' = g ⊙ e − mask ⊙ Σ(g ⊙ e)   (the stabilizer's share: mask marks the maxima that set the
 *                                        shift, each getting the whole −Σ as tf.max's gradient does)
 *   ∂/∂u  = ∂/∂u'            (symmetric: its first half minus its second)
 *   ∂/∂x  = ∂/∂u · Pᵀ − 2a·x·Σ_f (g ⊙ e)_f,    ∂/∂P = xᵀ · ∂/∂u
 * so gradients equal those of the composite tfjs-ops features.
 */
export function fusedPositiveFeatures(
  x: tf.Tensor3D,
  projection: tf.Tensor2D,
  attrs: PositiveFeaturesAttrs,
): tf.Tensor3D {
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, p, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.GradSaveFunc];
    const value = tf
      .engine()
      .runKernel(
        PositiveFeatures,
        { x: xs, projection: p },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor3D;
    save([xs, p, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xv, pv, phi] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor3D];
        return featuresVjp(dy as tf.Tensor3D, xv, pv, phi, attrs);
      },
    };
  });
  return fused(x, projection) as tf.Tensor3D;
}

function featuresVjp(
  dy: tf.Tensor3D,
  x: tf.Tensor3D,
  p: tf.Tensor2D,
  phi: tf.Tensor3D,
  attrs: PositiveFeaturesAttrs,
): [tf.Tensor, tf.Tensor] {
  const [G, L, d] = x.shape;
  const m = p.shape[1];
  const x2 = tf.reshape(x, [G * L, d]) as tf.Tensor2D;
  const ge = tf.mul(dy, attrs.floor === 0 ? phi : tf.sub(phi, attrs.floor)); // g ⊙ e
  const rowSum = tf.sum(ge, -1, true); // [G, L, 1]
  let gu: tf.Tensor = ge; // ∂/∂u'
  if (attrs.stabilizer !== 'none') {
    const u = tf.reshape(matMul(x2, p), [G, L, m]);
    const ue = attrs.symmetric ? tf.concat([u, tf.neg(u)], -1) : u;
    const axes = attrs.stabilizer === 'row' ? [2] : [1, 2];
    const shift = tf.max(ue, axes, true);
    const mask = tf.cast(tf.equal(ue, shift), 'float32');
    const share = attrs.stabilizer === 'row' ? rowSum : tf.sum(rowSum, [1, 2], true);
    gu = tf.sub(ge, tf.mul(mask, share));
  }
  if (attrs.symmetric) {
    const [plus, minus] = tf.split(gu, 2, -1) as [tf.Tensor, tf.Tensor];
    gu = tf.sub(plus, minus);
  }
  const gu2 = tf.reshape(gu, [G * L, m]) as tf.Tensor2D;
  const dx = tf.sub(
    tf.reshape(matMul(gu2, p, false, true), [G, L, d]),
    tf.mul(x, tf.mul(rowSum, 2 * attrs.halfNormScale)),
  );
  const dp = matMul(x2, gu2, true, false);
  return [dx, dp];
}
