import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { favorAttention } from '../../ops/favor/favor-attention.js';
import { linearAttention } from '../../ops/linear-attention.js';
import { softmaxAttention } from '../../ops/softmax-attention.js';
import { scoped } from '../backends.js';
import type { ParityContext } from './helpers.js';

/** The parity cases of bad input (see runParitySuite). */
export function badInputParity({ check }: ParityContext): void {
  describe('bad input', () => {
    const q = () => tf.zeros([1, 2, 3, 4]);
    check(
      'wrong rank, mismatched shapes, wrong mask shape and wrong dtype name the argument and the shapes',
      async () => {
        await scoped(async () => {
          const phi = positiveSoftmax({ projection: gaussianOrthogonal(4, 4, { seed: 1 }) });
          const v = tf.zeros([1, 2, 3, 5]);
          expect(() => softmaxAttention(tf.zeros([2, 3, 4]), q(), v)).toThrow(
            'softmaxAttention: q must be a rank-4 tensor [batch, heads, length, dim], got shape [2,3,4]',
          );
          expect(() => favorAttention(q(), tf.zeros([1, 3, 3, 4]), v, { featureMap: phi })).toThrow(
            'favorAttention: q and k must agree in batch and heads, got q [1,2,3,4] and k [1,3,3,4]',
          );
          expect(() => favorAttention(q(), tf.zeros([1, 2, 3, 6]), v, { featureMap: phi })).toThrow(
            'favorAttention: q and k must have the same last dimension, got q [1,2,3,4] and k [1,2,3,6]',
          );
          expect(() => linearAttention(q(), q(), tf.zeros([1, 2, 4, 5]))).toThrow(
            'linearAttention: v must agree with kFeat in batch, heads and length, got kFeat [1,2,3,4] and v [1,2,4,5]',
          );
          expect(() =>
            favorAttention(q(), q(), v, { featureMap: phi, mask: tf.ones([1, 4]) }),
          ).toThrow('favorAttention: mask must have shape [batch, keyLength] = [1,3], got [1,4]');
          expect(() => softmaxAttention(q(), q(), tf.zeros([1, 2, 3, 5], 'int32'))).toThrow(
            'softmaxAttention: v must have dtype float32, got int32 (shape [1,2,3,5])',
          );
          expect(() =>
            favorAttention(q(), tf.zeros([1, 2, 5, 4]), tf.zeros([1, 2, 5, 5]), {
              featureMap: phi,
              causal: true,
            }),
          ).toThrow(
            'favorAttention: causal attention needs as many queries as keys, got q [1,2,3,4] and k [1,2,5,4]',
          );
          expect(() => linearAttention(q(), q(), v, { causal: true, chunkSize: 0 })).toThrow(
            'linearAttention: chunkSize must be a positive integer, got 0',
          );
          // @ts-expect-error runtime check of a JS caller
          expect(() => favorAttention(q(), q(), v, {})).toThrow(
            /featureMap must implement FeatureMap/,
          );
          phi.dispose();
        });
      },
    );
  });
}
