import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { linearAttention } from '../../ops/linear-attention.js';
import { scoped } from '../backends.js';
import { rand4, randomArray } from '../inputs.js';
import { maxRelativeError, naiveCausalRecurrence, naiveLinearAttention } from '../reference.js';
import {
  arr,
  expectGradientsMatchFiniteDifferences,
  expectNoLeak,
  type ParityContext,
  positive4,
  read,
} from './helpers.js';

/** The parity cases of linearAttention (see runParitySuite). */
export function linearAttentionParity({ tol, check }: ParityContext): void {
  describe('linearAttention', () => {
    for (const L of [1, 7, 33]) {
      check(`bidirectional equals the naive loop (L=${L})`, async () => {
        await scoped(async () => {
          const qf = positive4([2, 3, L, 5], 1);
          const kf = positive4([2, 3, L, 5], 2);
          const v = rand4([2, 3, L, 4], 3);
          const out = expectNoLeak(() => linearAttention(qf, kf, v));
          expect(out.shape).toEqual([2, 3, L, 4]);
          expect(
            maxRelativeError(
              await arr(out),
              naiveLinearAttention(await arr(qf), await arr(kf), await arr(v)),
            ),
          ).toBeLessThan(tol);
        });
      });
      check(
        `causal equals the naive per-step recurrence for every chunk size (L=${L})`,
        async () => {
          await scoped(async () => {
            const qf = positive4([1, 2, L, 6], 4);
            const kf = positive4([1, 2, L, 6], 5);
            const v = rand4([1, 2, L, 3], 6);
            const ref = naiveCausalRecurrence(await arr(qf), await arr(kf), await arr(v));
            expect(
              maxRelativeError(
                naiveLinearAttention(await arr(qf), await arr(kf), await arr(v), {
                  causal: true,
                }),
                ref,
              ),
            ).toBeLessThan(1e-12);
            for (const chunkSize of [1, 2, 4, 7, 64]) {
              const out = expectNoLeak(() =>
                linearAttention(qf, kf, v, { causal: true, chunkSize }),
              );
              expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
            }
          });
        },
      );
    }

    check('cross attention (Lq ≠ Lk), bidirectional', async () => {
      await scoped(async () => {
        const qf = positive4([1, 2, 5, 4], 7);
        const kf = positive4([1, 2, 9, 4], 8);
        const v = rand4([1, 2, 9, 3], 9);
        const out = linearAttention(qf, kf, v);
        expect(out.shape).toEqual([1, 2, 5, 3]);
        expect(
          maxRelativeError(
            await arr(out),
            naiveLinearAttention(await arr(qf), await arr(kf), await arr(v)),
          ),
        ).toBeLessThan(tol);
      });
    });

    check(
      'closed form: q = k = 1 gives the running mean of v (causal) and the mean (bidirectional)',
      async () => {
        await scoped(async () => {
          const L = 37;
          const ones = tf.ones([1, 1, L, 3]);
          const v = tf.reshape(tf.range(1, L + 1, 1, 'float32'), [1, 1, L, 1]);
          const causal = await read(linearAttention(ones, ones, v, { causal: true, chunkSize: 8 }));
          for (const [i, x] of causal.entries())
            expect(Math.abs(x - (i + 2) / 2) / ((i + 2) / 2)).toBeLessThan(tol);
          const bi = await read(linearAttention(ones, ones, v));
          for (const x of bi) expect(Math.abs(x - (L + 1) / 2) / ((L + 1) / 2)).toBeLessThan(tol);
        });
      },
    );

    check('padding mask: padded keys count in neither numerator nor denominator', async () => {
      await scoped(async () => {
        const L = 11;
        const qf = positive4([2, 2, L, 4], 10);
        const kf = positive4([2, 2, L, 4], 11);
        const v = rand4([2, 2, L, 3], 12);
        const maskRows = [
          [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
          [0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0],
        ];
        const mask = tf.tensor2d(maskRows);
        for (const causal of [false, true]) {
          const out = expectNoLeak(() =>
            linearAttention(qf, kf, v, { causal, mask, chunkSize: 4 }),
          );
          const ref = naiveLinearAttention(await arr(qf), await arr(kf), await arr(v), {
            causal,
            mask: maskRows,
          });
          expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
          // garbage (NaN, Inf) in padded values changes nothing
          const bad = tf.where(
            tf.broadcastTo(tf.reshape(tf.equal(mask, 0), [2, 1, L, 1]), v.shape),
            tf.fill(v.shape, Number.NaN),
            v,
          );
          const badK = tf.where(
            tf.broadcastTo(tf.reshape(tf.equal(mask, 0), [2, 1, L, 1]), kf.shape),
            tf.fill(kf.shape, 1e30),
            kf,
          );
          expect(
            maxRelativeError(
              await arr(linearAttention(qf, badK, bad, { causal, mask, chunkSize: 4 })),
              ref,
            ),
          ).toBeLessThan(tol);
        }
      });
    });

    check('a query that sees no key gives 0, not NaN', async () => {
      await scoped(async () => {
        const qf = positive4([2, 1, 4, 3], 13);
        const v = rand4([2, 1, 4, 2], 14);
        const mask = tf.tensor2d([
          [0, 0, 0, 0],
          [0, 1, 1, 1],
        ]);
        for (const causal of [false, true]) {
          const out = await arr(linearAttention(qf, qf, v, { causal, mask }));
          expect(out[0]!.flat(2).every((x) => x === 0)).toBe(true);
          if (causal) expect(out[1]![0]![0]!.every((x) => x === 0)).toBe(true);
          expect(out.flat(3).every(Number.isFinite)).toBe(true);
        }
      });
    });

    check(
      'NaN in an unpadded value propagates (it is not hidden); earlier chunks stay finite',
      async () => {
        await scoped(async () => {
          const qf = positive4([1, 1, 4, 3], 15);
          const vals = randomArray([1, 1, 4, 2], 16);
          vals[2 * 2] = Number.NaN; // position 2, in the second chunk of size 2
          const v = tf.tensor4d(vals, [1, 1, 4, 2]);
          const out = (
            await arr(linearAttention(qf, qf, v, { causal: true, chunkSize: 2 }))
          )[0]![0]!;
          expect(out[0]!.concat(out[1]!).every(Number.isFinite)).toBe(true); // chunks before the NaN: unaffected
          expect(Number.isNaN(out[2]![0]!) && Number.isNaN(out[3]![0]!)).toBe(true); // from it on: NaN
          // bidirectional: every output sees position 2
          expect(
            (await arr(linearAttention(qf, qf, v)))[0]![0]!.every((row) => Number.isNaN(row[0]!)),
          ).toBe(true);
        });
      },
    );

    check('gradients match central finite differences (causal, chunked)', async () => {
      await scoped(async () => {
        const qf = positive4([1, 1, 6, 3], 17);
        const kf = positive4([1, 1, 6, 3], 18);
        const v = rand4([1, 1, 6, 2], 19);
        const w = rand4([1, 1, 6, 2], 20); // random linear read-out so that the loss is not degenerate
        const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(tf.mul(linearAttention(a, b, c, { causal: true, chunkSize: 4 }), w));
        await expectGradientsMatchFiniteDifferences(loss, [qf, kf, v], (n) => [0, 5, n - 1]);
      });
    });
  });
}
