import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { softmaxAttention } from '../../ops/softmax-attention.js';
import { scoped } from '../backends.js';
import { rand4 } from '../inputs.js';
import { maxRelativeError, naiveSoftmaxAttention } from '../reference.js';
import { arr, expectNoLeak, type ParityContext, read } from './helpers.js';

/** The parity cases of softmaxAttention (see runParitySuite). */
export function softmaxAttentionParity({ tol, check }: ParityContext): void {
  describe('softmaxAttention', () => {
    for (const [L, causal] of [
      [1, false],
      [1, true],
      [9, false],
      [9, true],
      [40, true],
    ] as const) {
      check(`equals the naive reference (L=${L}, causal=${causal})`, async () => {
        await scoped(async () => {
          const q = rand4([2, 2, L, 8], 21);
          const k = rand4([2, 2, L, 8], 22);
          const v = rand4([2, 2, L, 5], 23);
          const out = expectNoLeak(() => softmaxAttention(q, k, v, { causal }));
          expect(
            maxRelativeError(
              await arr(out),
              naiveSoftmaxAttention(await arr(q), await arr(k), await arr(v), { causal }),
            ),
          ).toBeLessThan(tol);
        });
      });
    }
    check('padding mask and fully padded rows (0, finite)', async () => {
      await scoped(async () => {
        const q = rand4([2, 1, 6, 4], 24);
        const k = rand4([2, 1, 6, 4], 25);
        const v = rand4([2, 1, 6, 3], 26);
        const maskRows = [
          [1, 1, 1, 0, 0, 0],
          [0, 0, 1, 1, 1, 1],
        ];
        for (const causal of [false, true]) {
          const out = softmaxAttention(q, k, v, { causal, mask: tf.tensor2d(maskRows) });
          const ref = naiveSoftmaxAttention(await arr(q), await arr(k), await arr(v), {
            causal,
            mask: maskRows,
          });
          expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
          expect((await arr(out)).flat(3).every(Number.isFinite)).toBe(true);
        }
      });
    });
    check('huge scores stay finite (softmax is max-shifted)', async () => {
      await scoped(async () => {
        const q = rand4([1, 1, 5, 4], 27, 1e3);
        const out = softmaxAttention(q, q, rand4([1, 1, 5, 2], 28));
        expect((await read(out)).every(Number.isFinite)).toBe(true);
      });
    });
  });
}
