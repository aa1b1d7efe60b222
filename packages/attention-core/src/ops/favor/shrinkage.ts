import type { FeatureMap } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { safeDivide } from '../../tensor/masking.js';
import { groupMatMul, transposeLast } from '../../tensor/products.js';
import { bidirectionalKeyFeatures, checkFeatures, keySide } from './key-side.js';

/**
 * Bidirectional FAVOR with variance-aware shrinkage toward mean(v) (the `shrinkage` option). The
 * features split into halves [0, m'/2) and [m'/2, m'): numerators and denominators of the full
 * estimate are the sums of the halves', so the half estimates o₁, o₂ cost two small products
 * more. noise ≈ |o₁ − o₂|²/4 (the full estimate's, for independent halves), signal =
 * max(0, |o − mean(v)|² − noise), λ = signal / (signal + noise), per group.
 */
export function shrunkToMean(
  fn: string,
  phi: FeatureMap,
  qb: tf.Tensor,
  kb: tf.Tensor,
  vb: tf.Tensor,
  keep: tf.Tensor | null,
): tf.Tensor {
  const [G, Lq] = qb.shape as [number, number, number];
  const Lk = kb.shape[1]!;
  const dv = vb.shape[2]!;
  const kf = bidirectionalKeyFeatures(keySide(fn, phi, kb, keep), keep);
  const qf = phi.features(qb, 'query');
  checkFeatures(fn, phi, qf, 'query', [G, Lq], kf.shape[2]);
  const m = qf.shape[2]!;
  if (m < 2) throw new RangeError(`${fn}: shrinkage needs at least 2 features, got ${m}`);
  const vOnes = tf.concat([vb, keep ?? tf.ones([G, Lk, 1])], 2); // [G, Lk, dv + 1]
  const half = (t: tf.Tensor, from: number, size: number) =>
    tf.slice(t, [0, 0, from], [-1, -1, size]);
  const numDen = (from: number, size: number) =>
    groupMatMul(
      half(qf, from, size),
      transposeLast(groupMatMul(transposeLast(vOnes), half(kf, from, size))),
    );
  const h = Math.floor(m / 2);
  const [n1, n2] = [numDen(0, h), numDen(h, m - h)];
  const ratio = (x: tf.Tensor) =>
    safeDivide(tf.slice(x, [0, 0, 0], [-1, -1, dv]), tf.slice(x, [0, 0, dv], [-1, -1, 1]));
  const out = ratio(tf.add(n1, n2));
  const [o1, o2] = [ratio(n1), ratio(n2)];
  const kept = keep ?? tf.ones([G, Lk, 1]);
  const meanV = tf.div(tf.sum(tf.mul(vb, kept), 1, true), tf.maximum(tf.sum(kept, 1, true), 1));
  const noise = tf.div(tf.sum(tf.square(tf.sub(o1, o2)), [1, 2], true), 4);
  const total = tf.sum(tf.square(tf.sub(out, meanV)), [1, 2], true);
  const signal = tf.relu(tf.sub(total, noise));
  const lambda = tf.div(signal, tf.maximum(tf.add(signal, noise), 1e-30));
  return tf.add(tf.mul(lambda, out), tf.mul(tf.sub(1, lambda), meanV));
}
