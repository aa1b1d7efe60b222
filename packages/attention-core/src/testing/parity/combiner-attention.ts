import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { combinerAttention } from '../../mechanisms/combiner-attention.js';
import { scoped } from '../backends.js';
import { rand4 } from '../inputs.js';
import { maxRelativeError, naiveCombinerAttention } from '../reference.js';
import { arr, expectNoLeak, type ParityContext } from './helpers.js';

/** The parity cases of combinerAttention (see runParitySuite). */
export function combinerAttentionParity({ tol, check }: ParityContext): void {
  describe('combinerAttention', () => {
    for (const variant of ['fixed', 'axial', 'logsparse', 'mixture'] as const) {
      check(
        `${variant}: equals the naive plan reference, causal and bidirectional (L = 21, padded)`,
        async () => {
          await scoped(async () => {
            const L = 21;
            const q = rand4([2, 2, L, 4], 111);
            const k = rand4([2, 2, L, 4], 112);
            const v = rand4([2, 2, L, 3], 113);
            const maskRows = [
              Array(L).fill(1),
              Array.from({ length: L }, (_, j) => (j % 4 === 1 ? 0 : 1)),
            ];
            const mask = tf.tensor2d(maskRows);
            for (const causal of [false, true]) {
              const out = expectNoLeak(() =>
                combinerAttention(q, k, v, { variant, causal, blockSize: 5, mask }),
              );
              const ref = naiveCombinerAttention(await arr(q), await arr(k), await arr(v), {
                variant,
                blockSize: 5,
                causal,
                mask: maskRows,
              });
              expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
            }
          });
        },
      );
    }
  });
}
