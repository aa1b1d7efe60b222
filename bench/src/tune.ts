import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';

await tf.setBackend('wasm');
const L = Number(process.argv[2] ?? 4096),
  H = 8,
  d = 64,
  m = 256;
const phi = softmaxKernelFeatures(d, m, { seed: 0 });
const q = tf.randomNormal([1, H, L, d], 0, 0.5),
  k = tf.randomNormal([1, H, L, d], 0, 0.5),
  v = tf.randomNormal([1, H, L, d]);
function t(name: string, f: () => tf.Tensor, n = 3) {
  f().dispose();
  const ts = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const o = f();
    o.dataSync();
    ts.push(performance.now() - t0);
    o.dispose();
  }
  ts.sort((a, b) => a - b);
  console.log(name, ts[n >> 1]!.toFixed(0), 'ms');
}
t('bidirectional', () => favorAttention(q, k, v, { featureMap: phi }));
for (const c of [32, 64, 128, 256])
  t(`causal C=${c}`, () =>
    favorAttention(q, k, v, { featureMap: phi, causal: true, chunkSize: c }),
  );
if (L <= 4096) t('exact', () => softmaxAttention(q, k, v), 1);
if (L <= 4096) t('exact causal', () => softmaxAttention(q, k, v, { causal: true }), 1);
t('features q only', () => tf.tidy(() => phi.features(tf.reshape(q, [H, L, d]), 'query')));
