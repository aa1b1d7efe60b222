import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { matMul2d } from './ops.js';

it('matMul2d: the product and both gradients equal tf.matMul’s', async () => {
  const start = tf.memory().numTensors;
  const a = tf.randomNormal([5, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
  const b = tf.randomNormal([3, 4], 0, 1, 'float32', 2) as tf.Tensor2D;
  const weights = tf.randomNormal([5, 4], 0, 1, 'float32', 3);
  const loss = (f: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.mul(f(x as tf.Tensor2D, y as tf.Tensor2D), weights));
  const ours = tf.grads(loss(matMul2d))([a, b]);
  const theirs = tf.grads(loss((x, y) => tf.matMul(x, y)))([a, b]);
  for (let i = 0; i < 2; i++) {
    const [x, y] = [await ours[i]!.data(), await theirs[i]!.data()];
    x.forEach((v, j) => {
      expect(v).toBeCloseTo(y[j]!, 5);
    });
  }
  const [p, q] = [matMul2d(a, b), tf.matMul(a, b)];
  expect(Array.from(await p.data())).toEqual(Array.from(await q.data()));
  expect(tf.env().getBool('IS_TEST')).toBe(true); // restored after each call
  tf.dispose([a, b, weights, p, q, ...ours, ...theirs]);
  expect(tf.memory().numTensors).toBe(start);
});
