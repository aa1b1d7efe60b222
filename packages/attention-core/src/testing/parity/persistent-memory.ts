import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { favorAttention } from '../../ops/favor/favor-attention.js';
import { softmaxAttention } from '../../ops/softmax-attention.js';
import { scoped } from '../backends.js';
import { rand4, randomArray } from '../inputs.js';
import { maxRelativeError, naiveFavorAttention, naiveSoftmaxAttention } from '../reference.js';
import { arr, expectNoLeak, type ParityContext } from './helpers.js';

/** The parity cases of persistent memory (see runParitySuite). */
export function persistentMemoryParity({ tol, check }: ParityContext): void {
  describe('persistent memory', () => {
    /** [M; X]: the [H, N, ·] memory repeated for each batch item, before the context. */
    const joined = (m: tf.Tensor, x: tf.Tensor) =>
      tf.concat([tf.broadcastTo(tf.expandDims(m, 0), [x.shape[0]!, ...m.shape]), x], 2);
    check(
      'softmax and FAVOR+ with memory slots equal the naive references (every query sees the memory)',
      async () => {
        const [L, N, d] = [19, 3, 8];
        const w = gaussianOrthogonal(16, d, { seed: 120 });
        const phi = positiveSoftmax({ projection: w, eps: 1e-4 });
        await scoped(async () => {
          const q = rand4([2, 2, L, d], 121, 0.6);
          const k = rand4([2, 2, L, d], 122, 0.6);
          const v = rand4([2, 2, L, 3], 123);
          const memory = {
            keys: tf.tensor3d(randomArray([2, N, d], 124, 0.6), [2, N, d]),
            values: tf.tensor3d(randomArray([2, N, 3], 125), [2, N, 3]),
          };
          const maskRows = [
            Array(L).fill(1),
            Array.from({ length: L }, (_, j) => (j > 15 ? 0 : 1)),
          ];
          const mask = tf.tensor2d(maskRows);
          const [kj, vj] = [await arr(joined(memory.keys, k)), await arr(joined(memory.values, v))];
          favorAttention(q, k, v, { featureMap: phi }); // warm the projection cache
          for (const causal of [false, true]) {
            const out = expectNoLeak(() => softmaxAttention(q, k, v, { causal, mask, memory }));
            const ref = naiveSoftmaxAttention(await arr(q), kj, vj, {
              causal,
              memory: N,
              mask: maskRows.map((r) => [...Array(N).fill(1), ...r]),
            });
            expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
            const fav = expectNoLeak(() =>
              favorAttention(q, k, v, { featureMap: phi, causal, memory, chunkSize: 8 }),
            );
            const favRef = naiveFavorAttention(await arr(q), kj, vj, w, {
              causal,
              memory: N,
              eps: 1e-4,
            });
            expect(maxRelativeError(await arr(fav), favRef)).toBeLessThan(10 * tol);
          }
        });
        phi.dispose();
      },
    );
  });
}
