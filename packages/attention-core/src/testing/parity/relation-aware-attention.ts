import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { relationAwareAttention } from '../../mechanisms/relation-aware-attention.js';
import { scoped } from '../backends.js';
import { rand4, randomArray } from '../inputs.js';
import { maxRelativeError, naiveRelationAwareAttention } from '../reference.js';
import { arr, expectNoLeak, type ParityContext } from './helpers.js';

/** The parity cases of relationAwareAttention (see runParitySuite). */
export function relationAwareAttentionParity({ tol, check }: ParityContext): void {
  describe('relationAwareAttention', () => {
    check(
      'equals the naive [L, L, d] form (per-pair relation ids, padding, causal and bidirectional)',
      async () => {
        const [L, d, R] = [11, 4, 4];
        await scoped(async () => {
          const q = rand4([2, 2, L, d], 141, 0.7);
          const k = rand4([2, 2, L, d], 142, 0.7);
          const v = rand4([2, 2, L, 3], 143);
          const ids = Array.from({ length: 2 }, (_, b) =>
            Array.from({ length: L }, (_, i) =>
              Array.from({ length: L }, (_, j) => (b + 3 * i + 5 * j) % R),
            ),
          );
          const relations = tf.tensor3d(ids, [2, L, L], 'int32');
          const relationKeys = tf.tensor2d(randomArray([R, d], 144, 0.7), [R, d]);
          const relationValues = tf.tensor2d(randomArray([R, 3], 145), [R, 3]);
          const maskRows = [Array(L).fill(1), Array.from({ length: L }, (_, j) => (j > 7 ? 0 : 1))];
          const mask = tf.tensor2d(maskRows);
          for (const causal of [false, true]) {
            const out = expectNoLeak(() =>
              relationAwareAttention(q, k, v, {
                relations,
                relationKeys,
                relationValues,
                mask,
                causal,
              }),
            );
            const ref = naiveRelationAwareAttention(
              await arr(q),
              await arr(k),
              await arr(v),
              ids,
              (await relationKeys.array()) as number[][],
              (await relationValues.array()) as number[][],
              { causal, mask: maskRows },
            );
            expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
          }
        });
      },
    );
  });
}
