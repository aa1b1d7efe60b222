import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';

await tf.setBackend('wasm');
const L = 4096,
  H = 8,
  d = 64,
  m = 256;
const causal = process.argv[2] === 'causal';
const phi = softmaxKernelFeatures(d, m, { seed: 0 });
const q = tf.randomNormal([1, H, L, d], 0, 0.5),
  k = tf.randomNormal([1, H, L, d], 0, 0.5),
  v = tf.randomNormal([1, H, L, d]);
const run = () =>
  process.argv[3] === 'exact'
    ? softmaxAttention(q, k, v, { causal })
    : favorAttention(q, k, v, { featureMap: phi, causal });
run().dispose();
const info = await tf.profile(run);
const agg = new Map<string, { n: number; ms: number }>();
for (const kk of info.kernels) {
  const a = agg.get(kk.name) ?? { n: 0, ms: 0 };
  a.n++;
  a.ms += kk.kernelTimeMs as number;
  agg.set(kk.name, a);
}
const rows = [...agg.entries()].sort((a, b) => b[1].ms - a[1].ms);
let tot = 0;
for (const [, a] of rows) tot += a.ms;
console.log(
  'total kernel ms',
  tot.toFixed(0),
  'kernels',
  info.kernels.length,
  'peakMB',
  (info.peakBytes / 2 ** 20).toFixed(0),
);
for (const [n, a] of rows.slice(0, 14))
  console.log(n.padEnd(16), String(a.n).padStart(5), a.ms.toFixed(1));
