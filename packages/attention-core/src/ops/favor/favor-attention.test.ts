import { type FeatureMap, softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { requestedBackend } from '../../testing/backends.js';
import { maxRelativeError, naiveLinearAttention } from '../../testing/reference.js';
import { rand4, TOLERANCES } from '../../testing/suites.js';
import { linearAttention } from '../linear-attention.js';
import { softmaxAttention } from '../softmax-attention.js';
import { favorAttention } from './favor-attention.js';

const tol = TOLERANCES[requestedBackend()] ?? 1e-3;
const arr = (t: tf.Tensor) => t.arraySync() as number[][][][];

describe('favorAttention with a kernel defined here, through the FeatureMap interface alone', () => {
  // a researcher's kernel: φ(x) = x² + 1 (elementwise), nothing from feature-maps but the type
  const squarePlusOne: FeatureMap = {
    name: 'square+1',
    numFeatures: 4,
    features: (x) => tf.tidy(() => tf.add(tf.square(x), 1)),
  };
  it.each([false, true])('equals naive linear attention on its features (causal=%s)', (causal) => {
    tf.tidy(() => {
      const q = rand4([2, 2, 9, 4], 1);
      const k = rand4([2, 2, 9, 4], 2);
      const v = rand4([2, 2, 9, 3], 3);
      const out = favorAttention(q, k, v, { featureMap: squarePlusOne, causal, chunkSize: 4 });
      const f = (t: tf.Tensor) => arr(tf.add(tf.square(t), 1));
      expect(
        maxRelativeError(arr(out), naiveLinearAttention(f(q), f(k), arr(v), { causal })),
      ).toBeLessThan(tol);
    });
  });
  it('a map that returns the wrong shape is reported with its name', () => {
    const broken: FeatureMap = { name: 'broken', numFeatures: 3, features: (x) => tf.sum(x, -1) };
    const q = tf.zeros([1, 1, 2, 4]);
    expect(() => favorAttention(q, q, q, { featureMap: broken })).toThrow(
      /featureMap broken must map \[G, L, d\] to float32 \[G, L, m'\]/,
    );
    q.dispose();
  });
});

describe('floor folding (bidirectional)', () => {
  it('adding eps on the small products equals adding it to every feature, with a padding mask', () => {
    const phi = softmaxKernelFeatures(8, 16, { seed: 2, eps: 0.05 }); // a large eps makes any slip visible
    tf.tidy(() => {
      const q = rand4([2, 2, 7, 8], 4);
      const k = rand4([2, 2, 7, 8], 5);
      const v = rand4([2, 2, 7, 3], 6);
      const mask = tf.tensor2d([
        [1, 1, 1, 1, 1, 0, 0],
        [1, 0, 1, 1, 1, 1, 1],
      ]);
      const kMasked = tf.mul(k, tf.reshape(mask, [2, 1, 7, 1]));
      const unfolded = linearAttention(phi.features(q, 'query'), phi.features(kMasked, 'key'), v, {
        mask,
      });
      const folded = favorAttention(q, k, v, { featureMap: phi, mask });
      expect(maxRelativeError(arr(folded), arr(unfolded))).toBeLessThan(tol);
    });
    phi.dispose();
  });
});

describe('training through favorAttention', () => {
  it('gradient descent fits a value projection so that FAVOR+ attention matches a target', async () => {
    const B = 1;
    const H = 2;
    const L = 16;
    const d = 8;
    const phi = softmaxKernelFeatures(d, 32, { seed: 3 });
    const x = rand4([B, H, L, d], 10, 0.5);
    const wTrue = tf.randomNormal([d, d], 0, 1, 'float32', 11);
    const target = tf.tidy(() =>
      softmaxAttention(x, x, tf.reshape(tf.matMul(tf.reshape(x, [-1, d]), wTrue), [B, H, L, d]), {
        causal: true,
      }),
    );
    const w = tf.variable(tf.zeros([d, d]));
    const optimizer = tf.train.adam(0.05);
    const lossOf = () =>
      tf.tidy(() => {
        const v = tf.reshape(tf.matMul(tf.reshape(x, [-1, d]), w), [B, H, L, d]);
        return tf.mean(
          tf.square(
            tf.sub(
              favorAttention(x, x, v, { featureMap: phi, causal: true, chunkSize: 5 }),
              target,
            ),
          ),
        ) as tf.Scalar;
      });
    const first = lossOf().dataSync()[0]!;
    for (let i = 0; i < 150; i++) optimizer.minimize(lossOf);
    const last = lossOf().dataSync()[0]!;
    expect(first).toBeGreaterThan(0.05);
    expect(last).toBeLessThan(first / 20);
    tf.dispose([x, wTrue, target, w]);
    optimizer.dispose();
    phi.dispose();
  });
});

describe('favorAttention memory', () => {
  it('leaves no tensors behind when many short groups are blocked together', () => {
    const phi = softmaxKernelFeatures(8, 16, { seed: 1 });
    const q = rand4([4, 8, 5, 8], 1);
    favorAttention(q, q, q, { featureMap: phi }).dispose(); // warm the projection cache
    const before = tf.memory().numTensors;
    for (const causal of [false, true])
      favorAttention(q, q, q, { featureMap: phi, causal }).dispose();
    linearAttention(tf.abs(q), tf.abs(q), q, { causal: true }).dispose();
    expect(tf.memory().numTensors).toBe(before + 1 /* tf.abs results, disposed below */ + 1);
    tf.dispose(q);
    phi.dispose();
  });
});
