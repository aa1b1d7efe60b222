import { denseExponentialSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { favorAttention } from '../../ops/favor/favor-attention.js';
import { scoped } from '../backends.js';
import { rand4 } from '../inputs.js';
import { maxRelativeError, naiveLinearAttention } from '../reference.js';
import { arr, type ParityContext } from './helpers.js';

/** The parity cases of data-dependent feature maps (FAVOR++, dense-exponential) (see runParitySuite). */
export function fittedMapsParity({ backend, tol, check }: ParityContext): void {
  describe('data-dependent feature maps (FAVOR++, dense-exponential)', () => {
    for (const variant of ['oprf', 'saderf', 'aderf', 'sderf'] as const) {
      check(
        `${variant}: favorAttention fits the map per call and equals linear attention on the fitted features`,
        async () => {
          const [L, d] = [14, 6];
          const w = gaussianOrthogonal(24, d, { seed: 160 });
          const phi = denseExponentialSoftmax({ variant, projection: w });
          await scoped(async () => {
            const q = rand4([1, 2, L, d], 161, 0.8);
            const k = rand4([1, 2, L, d], 162, 0.8);
            const v = rand4([1, 2, L, 3], 163);
            const cpuOnly = variant === 'aderf' || variant === 'sderf';
            if (cpuOnly && backend === 'webgpu') {
              // the d×d eigen-fits need synchronous reads, which tfjs-webgpu lacks: a clear error
              expect(() => favorAttention(q, k, v, { featureMap: phi })).toThrow(
                /needs synchronous reads, which tfjs-webgpu does not offer/,
              );
              return;
            }
            const out = favorAttention(q, k, v, { featureMap: phi });
            const flat = (x: tf.Tensor) => tf.reshape(x, [2, L, x.shape[3]!]);
            const fitted = phi.prepare!(flat(q), flat(k), null);
            const qf = tf.reshape(fitted.features(flat(q), 'query'), [1, 2, L, 24]);
            const kf = tf.reshape(fitted.features(flat(k), 'key'), [1, 2, L, 24]);
            const ref = naiveLinearAttention(await arr(qf), await arr(kf), await arr(v));
            expect(maxRelativeError(await arr(out), ref)).toBeLessThan(10 * tol);
            fitted.dispose();
          });
          phi.dispose();
        },
      );
    }
  });
}
