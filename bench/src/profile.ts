/**
 * `pnpm bench:profile`: where FAVOR+'s time goes on tfjs-wasm in Node (batch 1, 8 heads, d = dv = 64,
 * m = 256, L = 4096): time per kernel type (tf.profile), the FLOP count of the computation, the
 * achieved GFLOP/s, and tfjs-wasm's own 2-D matmul rate on the same machine (the practical limit of
 * a path built from tfjs ops). Writes bench/results/profile-wasm-node.json.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { favorAttention } from '@kernel-attention/core';
import { useBackend } from '@kernel-attention/core/testing';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { medianTensorMs } from './timing.js';

await useBackend('wasm');
const [H, L, d, m, dv, C] = [8, 4096, 64, 256, 64, 64]; // C: causal chunk (DEFAULT_CHUNK_SIZE)

/** FLOPs (multiply-adds count 2) of FAVOR+ at these shapes, per mode. */
function flops(causal: boolean): { features: number; attention: number; total: number } {
  const features = 2 * (2 * L * d * m) * H; // x·Wᵀ for queries and keys
  const w = dv + 1;
  const attention = causal
    ? H * (L * C * 2 * m + L * C * 2 * w + 2 * L * m * w * 2) // chunk scores, chunk·V, state use + update
    : H * (2 * L * m * w * 2); // KᵀV' and Q·(KᵀV')
  return { features, attention, total: features + attention };
}

// tfjs-wasm's matmul rate: the shapes FAVOR+ multiplies ([L, d]·[d, m] and [m, L]·[L, w])
const matmulShapes: [number, number, number][] = [
  [L, d, m],
  [m, L, dv + 1],
  [1024, 1024, 1024],
];
const matmul = [];
for (const [a, b, c] of matmulShapes) {
  const x = tf.randomNormal([a, b]);
  const y = tf.randomNormal([b, c]);
  const mul = () => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D);
  await medianTensorMs(mul, 1); // warm-up
  const ms = await medianTensorMs(mul, 5);
  matmul.push({ shape: `[${a}, ${b}]·[${b}, ${c}]`, ms, gflops: (2 * a * b * c) / (ms * 1e6) });
  tf.dispose([x, y]);
}

const phi = softmaxKernelFeatures(d, m, { seed: 0 });
const q = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 1);
const k = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 2);
const v = tf.randomNormal([1, H, L, dv], 0, 1, 'float32', 3);
const modes = [];
for (const causal of [false, true]) {
  const call = () => favorAttention(q, k, v, { featureMap: phi, causal });
  await medianTensorMs(call, 1); // warm-up
  const ms = await medianTensorMs(call, 3);
  const info = await tf.profile(call);
  (info.result as tf.Tensor).dispose();
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const kinfo of info.kernels) {
    const t = typeof kinfo.kernelTimeMs === 'number' ? kinfo.kernelTimeMs : 0;
    const e = byKernel.get(kinfo.name) ?? { ms: 0, calls: 0 };
    e.ms += t;
    e.calls += 1;
    byKernel.set(kinfo.name, e);
  }
  const kernels = [...byKernel.entries()]
    .map(([name, e]) => ({ name, ms: Math.round(e.ms * 10) / 10, calls: e.calls }))
    .sort((a, b) => b.ms - a.ms);
  const f = flops(causal);
  modes.push({ causal, ms, flops: f, gflops: f.total / (ms * 1e6), kernels: kernels.slice(0, 12) });
  process.stderr.write(
    `causal=${causal}: ${ms.toFixed(0)} ms, ${(f.total / 1e9).toFixed(2)} GFLOP, ${(f.total / (ms * 1e6)).toFixed(1)} GFLOP/s\n`,
  );
}
tf.dispose([q, k, v]);
phi.dispose();
const out = {
  meta: {
    date: new Date().toISOString(),
    backend: 'wasm (Node, one thread)',
    shape: { batch: 1, heads: H, length: L, dim: d, features: m, valueDim: dv, causalChunk: C },
    note: 'kernel times from tf.profile (wall time per kernel on wasm); FLOPs count multiply-adds as 2',
  },
  matmul,
  modes,
};
writeFileSync(
  join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'profile-wasm-node.json'),
  `${JSON.stringify(out, null, 2)}\n`,
);
