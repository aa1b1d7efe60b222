// createAttentionPool in headless Chromium: the `browser` export condition gives the Web Worker
// pool; each worker runs tfjs-wasm (its .wasm files served by Vite, as on the page itself).
import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { favorAttention } from '../ops/favor/favor-attention.js';
import { browserWasmPaths, rand4 } from '../testing/suites.js';
import { type AttentionPool, createAttentionPool } from './browser.js';

let pool: AttentionPool;
beforeAll(async () => {
  pool = await createAttentionPool({ workers: 2, wasmPaths: await browserWasmPaths() });
}, 60_000);
afterAll(async () => {
  await pool?.close();
});

it.each([
  { B: 1, H: 6, causal: false },
  { B: 2, H: 2, causal: true },
  { B: 1, H: 1, causal: true }, // fewer groups than threads: the workers get nothing
])('Web Workers share (batch, head) groups with the page: %o', async ({ B, H, causal }) => {
  const projection = gaussianOrthogonal(32, 8, { seed: 1 });
  const q = rand4([B, H, 40, 8], 1, 0.5);
  const k = rand4([B, H, 40, 8], 2, 0.5);
  const v = rand4([B, H, 40, 3], 3);
  const phi = positiveSoftmax({ projection, eps: 1e-6 });
  const ref = favorAttention(q, k, v, { featureMap: phi, causal });
  const before = tf.memory().numTensors;
  const out = await pool.favorAttention(q, k, v, { featureMap: phi, causal });
  expect(tf.memory().numTensors).toBe(before + 1);
  expect(out.shape).toEqual([B, H, 40, 3]);
  // the workers run wasm, the page its own backend (webgl, webgpu or wasm): float32 agreement
  const [a, b] = [await out.data(), await ref.data()];
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(2e-5);
  tf.dispose([q, k, v, ref, out]);
  phi.dispose();
});

it('a worker that cannot start is a clear error', async () => {
  await expect(
    createAttentionPool({
      workers: 1,
      wasmPaths: { 'tfjs-backend-wasm-simd.wasm': 'http://127.0.0.1:9/none.wasm' },
    }),
  ).rejects.toThrow(/createAttentionPool: a worker could not start/);
  await expect(createAttentionPool({ workers: 1.5 })).rejects.toThrow(
    /workers must be a positive integer, got 1.5/,
  );
});
