import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { predictedFavorMse } from '../../testing/accuracy.js';
import { randomArray } from '../../testing/suites.js';
import { favorAttention } from './favor-attention.js';

/**
 * FAVOR+ accuracy in the paper's regime (d = 64, m = 256), against a bound derived from the
 * paper's variance results (see testing/accuracy.ts and docs/guides/accuracy.md):
 *   RMSE_measured ≤ 1.5 · RMSE_predicted,
 * RMSE_predicted the first-order (delta-method) error of the ratio estimator with m IID positive
 * features. Orthogonal features do better than IID to first order; the factor 1.5 absorbs the
 * second-order terms of the ratio, which the bound is only applied where they are small
 * (predicted relative variance of the denominator < 0.25).
 * Every row also reports the trivial baseline that predicts mean(v) for every query.
 */
describe('FAVOR+ accuracy (d = 64, m = 256, L = 128, entries of q and k ~ N(0, σ²))', () => {
  const d = 64;
  const m = 256;
  const L = 128;
  const dv = 16;
  const seeds = 5;
  const rows = (a: Float32Array, w: number) =>
    Array.from({ length: a.length / w }, (_, i) => Array.from(a.subarray(i * w, (i + 1) * w)));

  function measure(sigma: number) {
    const qa = randomArray([L, d], 1, sigma);
    const ka = randomArray([L, d], 2, sigma);
    const va = randomArray([L, dv], 3, 1);
    const v = rows(va, dv);
    const { mse, exact, denominatorRelVar } = predictedFavorMse(rows(qa, d), rows(ka, d), v, m);
    const predicted = Math.sqrt(mse.reduce((a, b) => a + b, 0) / L);
    const meanV = Array.from({ length: dv }, (_, t) => v.reduce((acc, r) => acc + r[t]!, 0) / L);
    const baseline = Math.sqrt(
      exact.reduce((acc, mu) => acc + mu.reduce((s, x, t) => s + (x - meanV[t]!) ** 2, 0), 0) / L,
    );
    let sq = 0;
    for (let s = 0; s < seeds; s++) {
      const phi = softmaxKernelFeatures(d, m, { seed: 100 + s });
      const out = tf.tidy(() =>
        favorAttention(
          tf.tensor4d(qa, [1, 1, L, d]),
          tf.tensor4d(ka, [1, 1, L, d]),
          tf.tensor4d(va, [1, 1, L, dv]),
          { featureMap: phi },
        ),
      );
      const o = out.dataSync();
      exact.forEach((mu, i) => {
        mu.forEach((x, t) => {
          sq += (o[i * dv + t]! - x) ** 2;
        });
      });
      out.dispose();
      phi.dispose();
    }
    const measured = Math.sqrt(sq / (seeds * L));
    return { measured, predicted, baseline, relVarD: Math.max(...denominatorRelVar) };
  }

  it.each([0.1, 0.25, 0.35, 0.5])('σ = %s: error within 1.5× the derived prediction', (sigma) => {
    const r = measure(sigma);
    expect(r.relVarD).toBeLessThan(0.25); // inside the bound's domain of validity
    expect(r.measured).toBeLessThan(1.5 * r.predicted);
  });

  it('beats the mean(v) baseline for σ = 0.25 and 0.35, loses to it at σ = 0.1 and σ = 0.5', () => {
    // The regime where FAVOR+ (m = 256) is worth it is narrow: when attention is nearly uniform
    // (σ = 0.1) exact ≈ mean(v) and the estimator's noise dominates; from σ² = 0.25 (σ = 0.5) its
    // variance, which grows like exp(|q̂+k̂|²), exceeds the spread of exact outputs. Lower-variance
    // features (FAVOR++, issue 9) are what moves this boundary.
    for (const sigma of [0.25, 0.35]) {
      const r = measure(sigma);
      expect(r.measured).toBeLessThan(r.baseline);
    }
    for (const sigma of [0.1, 0.5]) {
      const r = measure(sigma);
      expect(r.measured).toBeGreaterThan(r.baseline);
    }
  });
});
