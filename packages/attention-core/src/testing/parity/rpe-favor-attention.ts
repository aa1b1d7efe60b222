import { generalized, positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { rpeFavorAttention } from '../../mechanisms/rpe-favor-attention.js';
import { defaultToeplitzMethod, toeplitzMatmul } from '../../mechanisms/toeplitz.js';
import { favorAttention } from '../../ops/favor/favor-attention.js';
import { scoped } from '../backends.js';
import { rand4, randomArray } from '../inputs.js';
import { maxRelativeError, naiveLinearAttention } from '../reference.js';
import { arr, expectNoLeak, type ParityContext, read } from './helpers.js';

/** The parity cases of rpeFavorAttention (relative positions, Toeplitz) (see runParitySuite). */
export function rpeFavorAttentionParity({ backend, tol, check }: ParityContext): void {
  describe('rpeFavorAttention (relative positions, Toeplitz)', () => {
    const cpuSide = backend === 'cpu' || backend === 'wasm';
    for (const causal of [false, true]) {
      check(
        `equals the dense c_{j−i}·φ(q_i)·φ(k_j) reference, default method (causal=${causal}, padded)`,
        async () => {
          await scoped(async () => {
            const [B, H, L, d] = [2, 2, 70, 4];
            const phi = generalized({ fn: 'elu+1', inputDim: d });
            const q = rand4([B, H, L, d], 91);
            const k = rand4([B, H, L, d], 92);
            const v = rand4([B, H, L, 3], 93);
            const bias = randomArray([H, 2 * L - 1], 94, 0.5);
            const relativeBias = tf.tensor2d(bias, [H, 2 * L - 1]);
            const maskRows = [Array(L).fill(1), [...Array(L - 6).fill(1), ...Array(6).fill(0)]];
            const mask = tf.tensor2d(maskRows);
            const out = expectNoLeak(() =>
              rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, causal, mask }),
            );
            const ref = naiveLinearAttention(
              await arr(phi.features(q, 'query')),
              await arr(phi.features(k, 'key')),
              await arr(v),
              {
                causal,
                mask: maskRows,
                relativeBias: (await relativeBias.array()) as number[][],
              },
            );
            expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
          });
        },
      );
    }

    check('relativeBias ≡ 0 gives favorAttention (causal)', async () => {
      await scoped(async () => {
        const phi = positiveSoftmax({ projection: gaussianOrthogonal(16, 8, { seed: 95 }) });
        const q = rand4([1, 2, 33, 8], 96, 0.5);
        const v = rand4([1, 2, 33, 2], 97);
        const relativeBias = tf.zeros([2, 65]);
        const a = rpeFavorAttention(q, q, v, { featureMap: phi, relativeBias, causal: true });
        const b = favorAttention(q, q, v, { featureMap: phi, causal: true });
        expect(maxRelativeError(await arr(a), await arr(b))).toBeLessThan(tol);
        phi.dispose();
      });
    });

    check(
      'toeplitzMatmul: both methods where the FFT runs, a clear error for it elsewhere',
      async () => {
        await scoped(async () => {
          const L = 9;
          const c = tf.tensor2d(randomArray([2, 2 * L - 1], 98), [2, 2 * L - 1]);
          const x = tf.tensor3d(randomArray([2, L, 3], 99), [2, L, 3]);
          const dense = expectNoLeak(() => toeplitzMatmul(c, x, { method: 'toeplitz' }));
          const [cv, xv] = [await read(c), await read(x)];
          const ref: number[] = [];
          for (let b = 0; b < 2; b++)
            for (let i = 0; i < L; i++)
              for (let col = 0; col < 3; col++) {
                let acc = 0;
                for (let j = 0; j < L; j++)
                  acc += cv[b * (2 * L - 1) + j - i + L - 1]! * xv[(b * L + j) * 3 + col]!;
                ref.push(acc);
              }
          expect(maxRelativeError(await read(dense), ref)).toBeLessThan(tol);
          if (cpuSide) {
            const viaFft = expectNoLeak(() => toeplitzMatmul(c, x, { method: 'fft' }));
            expect(maxRelativeError(await read(viaFft), ref)).toBeLessThan(tol);
            expect(defaultToeplitzMethod(4096)).toBe('fft');
          } else {
            expect(() => toeplitzMatmul(c, x, { method: 'fft' })).toThrow(
              new RegExp(
                `method 'fft' runs on the CPU side and needs the cpu or wasm backend, got '${backend}'`,
              ),
            );
            expect(defaultToeplitzMethod(4096)).toBe('toeplitz');
          }
        });
      },
    );

    check('gradients for the bias, q and v are finite and nonzero', async () => {
      await scoped(async () => {
        const phi = generalized({ fn: 'elu+1', inputDim: 4 });
        const q = rand4([1, 2, 12, 4], 100);
        const v = rand4([1, 2, 12, 2], 101);
        const b = tf.tensor2d(randomArray([2, 23], 102, 0.5), [2, 23]);
        const grads = tf.grads((qq: tf.Tensor, vv: tf.Tensor, bb: tf.Tensor) =>
          tf.sum(
            tf.square(
              rpeFavorAttention(qq, qq, vv, { featureMap: phi, relativeBias: bb, causal: true }),
            ),
          ),
        )([q, v, b]);
        for (const g of grads) {
          const values = await read(g);
          expect(values.every(Number.isFinite)).toBe(true);
          expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0);
        }
      });
    });
  });
}
