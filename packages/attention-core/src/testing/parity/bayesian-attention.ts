import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { bayesianAttention } from '../../mechanisms/bayesian-attention.js';
import { lgammaNumber } from '../../mechanisms/lgamma.js';
import { scoped } from '../backends.js';
import { rand4 } from '../inputs.js';
import { maxRelativeError, naiveSoftmaxAttention } from '../reference.js';
import { arr, type ParityContext } from './helpers.js';

/** The parity cases of bayesianAttention (see runParitySuite). */
export function bayesianAttentionParity({ tol, check }: ParityContext): void {
  describe('bayesianAttention', () => {
    check(
      'inference equals naive softmax attention; samples with a large Weibull shape approach it; KL as in Float64',
      async () => {
        const [L, d] = [12, 4];
        await scoped(async () => {
          const q = rand4([2, 2, L, d], 151, 0.8);
          const k = rand4([2, 2, L, d], 152, 0.8);
          const v = rand4([2, 2, L, 3], 153);
          const maskRows = [Array(L).fill(1), Array.from({ length: L }, (_, j) => (j > 8 ? 0 : 1))];
          const mask = tf.tensor2d(maskRows);
          const [qa, ka, va] = [await arr(q), await arr(k), await arr(v)];
          for (const causal of [false, true]) {
            const det = bayesianAttention(q, k, v, { training: false, causal, mask });
            const ref = naiveSoftmaxAttention(qa, ka, va, { causal, mask: maskRows });
            expect(maxRelativeError(await arr(det.output), ref)).toBeLessThan(tol);
            const noisy = bayesianAttention(q, k, v, {
              training: true,
              shape: 1e4,
              seed: 1,
              causal,
              mask,
            });
            expect(maxRelativeError(await arr(noisy.output), ref)).toBeLessThan(1e-3);
            // the KL in Float64 from the same scores (α = β = 1, k = 10)
            let want = 0;
            for (const [b, qb] of qa.entries()) {
              for (const [h, qh] of qb.entries()) {
                for (const [i, qi] of qh.entries()) {
                  const kh = ka[b]![h]!;
                  const vis = kh.map((_, j) => (!causal || j <= i) && maskRows[b]![j] !== 0);
                  const s = kh.map(
                    (kj) => kj.reduce((a, x, t) => a + x * qi[t]!, 0) / Math.sqrt(d),
                  );
                  const m = Math.max(...s.filter((_, j) => vis[j]));
                  for (const [j, sj] of s.entries()) {
                    if (!vis[j]) continue;
                    const logLambda = sj - m - lgammaNumber(1.1);
                    want +=
                      0.5772156649015329 / 10 -
                      logLambda +
                      Math.log(10) +
                      Math.exp(sj - m) -
                      0.5772156649015329 -
                      1;
                  }
                }
              }
            }
            const got = (await det.kl.data())[0]!;
            expect(Math.abs(got - want / 2)).toBeLessThan(10 * tol * (1 + Math.abs(want / 2)));
          }
        });
      },
    );
  });
}
