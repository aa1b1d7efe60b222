import type { FeatureMap } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { expBelow, NO_KEY_YET, safeDivide } from '../../tensor/masking.js';
import { groupMatMul, transposeLast } from '../../tensor/products.js';
import { rangeTaker } from '../../tensor/range-taker.js';
import { checkFeatures, keySide } from './key-side.js';

/**
 * Bidirectional FAVOR+ for long sequences, features computed `block` positions at a time.
 * Keys: with φ(k_j; s) = e^{ℓ_j − s} base_j + floor (keySide), accumulate for a running max r
 *   KVᵀ ← KVᵀ·e^{r_old − r} + (V'_c ⊙ e^{ℓ_c − r})ᵀ base_c,   ΣV' ← ΣV' + 1ᵀV'_c
 * so that at the end (s = r, the largest ℓ of the unpadded keys) KV = Σ_j φ(k_j) v'_jᵀ − floor·1ΣV'ᵀ.
 * Queries: out_c = φ(Q_c)·(KV + floor·1 ΣV'ᵀ) block by block. Position-local maps: ℓ ≡ 0.
 * performer-pytorch's global stabilizer (keyStabilizer 'global') is its keyParts' running max.
 */
export function blockedBidirectional(
  fn: string,
  phi: FeatureMap,
  qb: tf.Tensor,
  kb: tf.Tensor,
  vb: tf.Tensor,
  keep: tf.Tensor | null,
  block: number,
): tf.Tensor {
  const [G, Lq] = qb.shape as [number, number, number];
  const Lk = kb.shape[1]!;
  const dv = vb.shape[2]!;
  const takeK = rangeTaker(kb, 1);
  const takeV = rangeTaker(tf.concat([vb, keep ?? tf.ones([G, Lk, 1])], 2), 1); // V' = [V, keep]
  const takeKeep = keep === null ? null : rangeTaker(keep, 1);
  // the global stabilizer counts padded (zeroed) keys too, as features(k, 'key') does
  const global = phi.keyStabilizer === 'global';
  let kvT: tf.Tensor | null = null; // [G, w, m]
  let ref: tf.Tensor = tf.fill([G, 1, 1], NO_KEY_YET);
  let vSum: tf.Tensor = tf.zeros([G, 1, dv + 1]);
  let floor = 0;
  for (let start = 0; start < Lk; start += block) {
    const size = Math.min(block, Lk - start);
    const next = tf.tidy(() => {
      const kc = takeK(start, size);
      const keepC = takeKeep === null ? null : takeKeep(start, size);
      const side = keySide(fn, phi, kc, global ? null : keepC, global);
      const ell = side.logScale ?? tf.zeros([G, size, 1]);
      const vc = takeV(start, size); // [G, C, w]
      const r = tf.maximum(ref, tf.max(ell, [1, 2], true));
      let scale = expBelow(ell, r); // [G, C, 1]
      if (keepC !== null) scale = tf.mul(scale, keepC);
      const term = groupMatMul(transposeLast(tf.mul(vc, scale)), side.base); // [G, w, m]
      return {
        kvT: kvT === null ? term : tf.add(tf.mul(kvT, expBelow(ref, r)), term),
        ref: r,
        vSum: tf.add(vSum, tf.sum(vc, 1, true)),
        floor: side.floor,
      };
    });
    tf.dispose([kvT, ref, vSum].filter((t): t is tf.Tensor => t !== null));
    ({ kvT, ref, vSum, floor } = next);
  }
  const kv = tf.tidy(() => {
    const k = transposeLast(kvT!); // [G, m, w]
    return floor === 0 ? k : tf.add(k, tf.mul(vSum, floor)); // + floor·1_m ΣV'ᵀ (broadcast over m)
  });
  const takeQ = rangeTaker(qb, 1);
  const outs: tf.Tensor[] = [];
  for (let start = 0; start < Lq; start += block) {
    const size = Math.min(block, Lq - start);
    outs.push(
      tf.tidy(() => {
        const qf = phi.features(takeQ(start, size), 'query');
        checkFeatures(fn, phi, qf, 'query', [G, size], kv.shape[1]);
        const numDen = groupMatMul(qf, kv); // [G, C, w]
        const cols = rangeTaker(numDen, 2);
        return safeDivide(cols(0, dv), cols(dv, 1));
      }),
    );
  }
  return outs.length === 1 ? outs[0]! : tf.concat(outs, 1);
}
