import {
  generalized,
  hyperbolicSoftmax,
  positiveSoftmax,
  softmaxKernelFeatures,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { favorAttention } from '../ops/favor/favor-attention.js';
import { rand4 } from '../testing/suites.js';
import { type AttentionPool, createAttentionPool } from './node.js';

let pool: AttentionPool;
beforeAll(async () => {
  pool = await createAttentionPool({ workers: 2, backend: tf.getBackend() as 'wasm' | 'cpu' });
}, 60_000);
afterAll(async () => {
  await pool?.close();
});

it.each([
  { B: 1, H: 8, causal: false, map: positiveSoftmax },
  { B: 2, H: 3, causal: true, map: positiveSoftmax }, // 6 groups over 3 threads
  { B: 1, H: 1, causal: true, map: positiveSoftmax }, // fewer groups than threads
  { B: 1, H: 4, causal: true, map: hyperbolicSoftmax },
])(
  'splits (batch, head) groups across threads with the single-thread result: %o',
  async ({ B, H, causal, map }) => {
    const projection = gaussianOrthogonal(32, 8, { seed: 1 });
    const q = rand4([B, H, 40, 8], 1, 0.5);
    const k = rand4([B, H, 40, 8], 2, 0.5);
    const v = rand4([B, H, 40, 3], 3);
    const phi = map({ projection, eps: 1e-4 });
    const ref = favorAttention(q, k, v, { featureMap: phi, causal });
    const before = tf.memory().numTensors;
    const out = await pool.favorAttention(q, k, v, { featureMap: phi, causal });
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(out.shape).toEqual([B, H, 40, 3]);
    expect(Array.from(await out.data())).toEqual(Array.from(await ref.data()));
    tf.dispose([q, k, v, ref, out]);
    phi.dispose();
  },
);

it('rejects bad input and bad options', async () => {
  const x = tf.zeros([1, 2, 4, 8]);
  const featureMap = softmaxKernelFeatures(8, 16, { seed: 1 });
  await expect(
    pool.favorAttention(x, tf.zeros([1, 2, 5, 8]), tf.zeros([1, 2, 5, 8]), { featureMap }),
  ).rejects.toThrow(/as many queries as keys/);
  await expect(pool.favorAttention(tf.zeros([2, 4, 8]), x, x, { featureMap })).rejects.toThrow(/q/);
  // one vocabulary with favorAttention: featureMap, not projection
  const projection = gaussianOrthogonal(16, 8, { seed: 1 });
  await expect(
    pool.favorAttention(x, x, x, { projection } as unknown as { featureMap: typeof featureMap }),
  ).rejects.toThrow(
    /featureMap must be a positiveSoftmax or hyperbolicSoftmax map .* got undefined/,
  );
  const relu = generalized({ projection, fn: (t) => tf.relu(t) });
  await expect(pool.favorAttention(x, x, x, { featureMap: relu })).rejects.toThrow(
    /each worker rebuilds it from its options\), got a map named "generalized/,
  );
  await expect(
    pool.favorAttention(x, x, x, null as unknown as { featureMap: typeof featureMap }),
  ).rejects.toThrow(/options \{ featureMap, causal \} are required, got null/);
  await expect(createAttentionPool({ workers: 0 })).rejects.toThrow(
    /workers must be a positive integer, got 0/,
  );
  x.dispose();
});
