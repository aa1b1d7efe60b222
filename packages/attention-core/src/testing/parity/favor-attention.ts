import {
  generalized,
  hyperbolicSoftmax,
  positiveSoftmax,
  trigSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { favorAttention } from '../../ops/favor/favor-attention.js';
import { scoped } from '../backends.js';
import { rand4 } from '../inputs.js';
import { maxRelativeError, naiveFavorAttention } from '../reference.js';
import {
  arr,
  expectGradientsMatchFiniteDifferences,
  expectNoLeak,
  type ParityContext,
  read,
} from './helpers.js';

/** The parity cases of favorAttention (FAVOR+ positive features) (see runParitySuite). */
export function favorAttentionParity({ tol, check }: ParityContext): void {
  describe('favorAttention (FAVOR+ positive features)', () => {
    const d = 8;
    const m = 16;
    const w = gaussianOrthogonal(m, d, { seed: 5 });
    const eps = 1e-4;
    for (const [L, causal] of [
      [1, true],
      [13, false],
      [13, true],
      [70, true],
    ] as const) {
      check(
        `equals naive linear attention on Float64 positive features (L=${L}, causal=${causal})`,
        async () => {
          const phi = positiveSoftmax({ projection: w, eps });
          await scoped(async () => {
            const q = rand4([2, 2, L, d], 30, 0.7);
            const k = rand4([2, 2, L, d], 31, 0.7);
            const v = rand4([2, 2, L, 3], 32);
            favorAttention(q, k, v, { featureMap: phi, causal }); // warm the projection cache
            const out = expectNoLeak(() =>
              favorAttention(q, k, v, { featureMap: phi, causal, chunkSize: 8 }),
            );
            const ref = naiveFavorAttention(await arr(q), await arr(k), await arr(v), w, {
              causal,
              eps,
            });
            expect(maxRelativeError(await arr(out), ref)).toBeLessThan(10 * tol);
          });
          phi.dispose();
        },
      );
    }
    check(
      'gradients w.r.t. q, k and v match central finite differences (through φ and its stabilizers)',
      async () => {
        const phi = positiveSoftmax({ projection: w, eps });
        await scoped(async () => {
          const q = rand4([1, 1, 5, d], 38, 0.5);
          const k = rand4([1, 1, 5, d], 39, 0.5);
          const v = rand4([1, 1, 5, 2], 46);
          const r = rand4([1, 1, 5, 2], 47);
          for (const causal of [false, true]) {
            const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
              tf.sum(tf.mul(favorAttention(a, b, c, { featureMap: phi, causal, chunkSize: 2 }), r));
            await expectGradientsMatchFiniteDifferences(loss, [q, k, v], (n) => [1, 7, n - 2]);
          }
        });
        phi.dispose();
      },
    );
    check(
      'bidirectional results do not depend on featureBlockSize (blocked keys, running stabilizer)',
      async () => {
        const maps = [
          positiveSoftmax({ projection: w, eps }),
          hyperbolicSoftmax({ projection: w, eps }),
          trigSoftmax({ projection: w }),
          generalized({ projection: w, fn: 'relu' }), // no keyParts: position-local
        ];
        await scoped(async () => {
          const L = 11;
          const q = rand4([2, 2, L, d], 48, 0.8);
          const k = rand4([2, 2, L, d], 49, 0.8);
          const v = rand4([2, 2, L, 3], 50);
          const mask = tf.tensor2d([
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1],
          ]);
          for (const featureMap of maps) {
            for (const m of [undefined, mask]) {
              const whole = favorAttention(q, k, v, { featureMap, mask: m });
              for (const featureBlockSize of [1, 3, 4, 10]) {
                const blocked = expectNoLeak(() =>
                  favorAttention(q, k, v, { featureMap, mask: m, featureBlockSize }),
                );
                expect(maxRelativeError(await arr(blocked), await arr(whole))).toBeLessThan(tol);
              }
            }
          }
        });
        for (const m of maps) m.dispose();
      },
    );
    check('padded positions give the same result as the truncated sequence', async () => {
      const phi = positiveSoftmax({ projection: w, eps });
      await scoped(async () => {
        const L = 10;
        const keepLen = 6;
        const q = rand4([1, 2, L, d], 33);
        const k = rand4([1, 2, L, d], 34);
        const v = rand4([1, 2, L, 3], 35);
        const mask = tf.tensor2d([Array.from({ length: L }, (_, j) => (j < keepLen ? 1 : 0))]);
        const cut = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 0], [1, 2, keepLen, t.shape[3]!]);
        for (const causal of [false, true]) {
          const padded = favorAttention(q, k, v, { featureMap: phi, causal, mask });
          const truncated = favorAttention(cut(q), cut(k), cut(v), { featureMap: phi, causal });
          expect(maxRelativeError(await arr(cut(padded)), await arr(truncated))).toBeLessThan(tol);
        }
      });
      phi.dispose();
    });
    check('inputs with norms up to 1e3 give finite outputs', async () => {
      const phi = positiveSoftmax({ projection: w });
      await scoped(async () => {
        for (const scale of [1e-6, 1, 1e2, 1e3]) {
          const q = rand4([1, 1, 9, d], 36, scale / Math.sqrt(d));
          for (const causal of [false, true]) {
            const out = favorAttention(q, q, rand4([1, 1, 9, 2], 37), {
              featureMap: phi,
              causal,
            });
            expect((await read(out)).every(Number.isFinite)).toBe(true);
          }
        }
      });
      phi.dispose();
    });
  });
}
