import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { gatedAttention, relaxedGates } from '../../mechanisms/gated-attention.js';
import { favorAttention } from '../../ops/favor/favor-attention.js';
import { scoped } from '../backends.js';
import { rand4 } from '../inputs.js';
import { maxRelativeError, naiveFavorAttention, naiveSoftmaxAttention } from '../reference.js';
import { arr, expectNoLeak, type ParityContext } from './helpers.js';

/** The parity cases of gatedAttention (see runParitySuite). */
export function gatedAttentionParity({ tol, check }: ParityContext): void {
  describe('gatedAttention', () => {
    check(
      'hard gates equal attention over the open keys; relaxed gates weight keys by g (softmax and FAVOR+)',
      async () => {
        const [L, d] = [17, 6];
        const w = gaussianOrthogonal(16, d, { seed: 130 });
        const phi = positiveSoftmax({ projection: w, eps: 1e-4 });
        await scoped(async () => {
          const q = rand4([2, 2, L, d], 131, 0.6);
          const k = rand4([2, 2, L, d], 132, 0.6);
          const v = rand4([2, 2, L, 3], 133);
          const p = Array.from({ length: 2 }, (_, b) =>
            Array.from({ length: L }, (_, j) => ((b * 7 + j * 5) % 11) / 10),
          );
          const gates = tf.tensor2d(p);
          favorAttention(q, k, v, { featureMap: phi }); // warm the projection cache
          const [qa, ka, va] = [await arr(q), await arr(k), await arr(v)];
          for (const causal of [false, true]) {
            // hard: keys with p > 1/2 only — the reference masks the others
            const open = p.map((row) => row.map((x) => (x > 0.5 ? 1 : 0)));
            const hard = expectNoLeak(() =>
              gatedAttention(q, k, v, { gates, mode: 'hard', causal }),
            );
            const ref = naiveSoftmaxAttention(qa, ka, va, { causal, mask: open });
            expect(maxRelativeError(await arr(hard), ref)).toBeLessThan(tol);
            // relaxed with FAVOR+: key features scaled by the sampled gates
            const g = (await relaxedGates(gates, 0.5, 9).array()) as number[][];
            const soft = expectNoLeak(() =>
              gatedAttention(q, k, v, {
                gates,
                mode: 'relaxed',
                seed: 9,
                causal,
                featureMap: phi,
              }),
            );
            const softRef = naiveFavorAttention(qa, ka, va, w, {
              causal,
              eps: 1e-4,
              keyWeights: g,
            });
            expect(maxRelativeError(await arr(soft), softRef)).toBeLessThan(10 * tol);
          }
        });
        phi.dispose();
      },
    );
  });
}
