/**
 * `pnpm bench:rpe` (also run by `pnpm bench`): kernelized attention with relative positions on the
 * wasm backend in Node — rpeFavorAttention with the FFT Toeplitz products, the same with the dense
 * Toeplitz matrix, and exact softmax attention with the relative bias (O(L²), one head at a time)
 * — batch 1, 2 heads, d = 32, m = 32, dv = 16, bidirectional, L = 512 … 16384. The dense paths
 * stop where their L×L matrices per head outgrow memory (recorded as skipped, with the reason).
 * Writes bench/results/rpe-wasm-node.json.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rpeFavorAttention, toeplitzMatrix } from '@kernel-attention/core';
import { useBackend } from '@kernel-attention/core/testing';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { medianTensorMs } from './timing.js';

await useBackend('wasm');
const [H, d, m, dv] = [2, 32, 32, 16];
const quick = process.argv.includes('--quick');
const lengths = quick ? [512, 2048] : [512, 1024, 2048, 4096, 8192, 16384];
/** Largest L for the dense Toeplitz path and for exact attention (an L×L matrix per head). */
const DENSE_MAX = 4096;
const EXACT_MAX = 8192;

/** Exact softmax(q·kᵀ/√d + B) v with B_ij = b[j − i + L − 1], one head at a time. */
function exactWithBias(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor2D): tf.Tensor {
  const L = q.shape[2]!;
  const heads: tf.Tensor[] = [];
  for (let h = 0; h < H; h++) {
    heads.push(
      tf.tidy(() => {
        const qh = tf.reshape(tf.slice(q, [0, h, 0, 0], [1, 1, L, d]), [L, d]) as tf.Tensor2D;
        const kh = tf.reshape(tf.slice(k, [0, h, 0, 0], [1, 1, L, d]), [L, d]) as tf.Tensor2D;
        const vh = tf.reshape(tf.slice(v, [0, h, 0, 0], [1, 1, L, dv]), [L, dv]) as tf.Tensor2D;
        const b = tf.reshape(
          toeplitzMatrix(tf.slice(bias, [h, 0], [1, 2 * L - 1]) as tf.Tensor2D, L),
          [L, L],
        );
        const scores = tf.add(tf.mul(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(d)), b);
        return tf.matMul(tf.softmax(scores), vh);
      }),
    );
  }
  const out = tf.stack(heads, 0);
  tf.dispose(heads);
  return out;
}

const phi = softmaxKernelFeatures(d, m, { seed: 0 });
const results: { op: string; length: number; medianMs: number | null; skipped?: string }[] = [];
for (const L of lengths) {
  const q = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 1);
  const k = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 2);
  const v = tf.randomNormal([1, H, L, dv], 0, 1, 'float32', 3);
  const relativeBias = tf.randomNormal([H, 2 * L - 1], 0, 0.5, 'float32', 4) as tf.Tensor2D;
  const runs = L >= 8192 ? 1 : 3;
  const cases: [string, number, () => tf.Tensor][] = [
    [
      'rpe-fft',
      Infinity,
      () => rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, method: 'fft' }),
    ],
    [
      'rpe-dense-toeplitz',
      DENSE_MAX,
      () => rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, method: 'toeplitz' }),
    ],
    ['exact-softmax-with-bias', EXACT_MAX, () => exactWithBias(q, k, v, relativeBias)],
  ];
  for (const [op, max, call] of cases) {
    if (L > max) {
      results.push({
        op,
        length: L,
        medianMs: null,
        skipped: `L > ${max}: an L×L matrix per head`,
      });
      continue;
    }
    const ms = await medianTensorMs(call, runs);
    results.push({ op, length: L, medianMs: ms });
    process.stderr.write(`${op} L=${L}: ${ms.toFixed(0)} ms\n`);
  }
  tf.dispose([q, k, v, relativeBias]);
}
phi.dispose();
const out = {
  meta: {
    date: new Date().toISOString(),
    backend: 'wasm (Node, single thread)',
    shape: { batch: 1, heads: H, dim: d, features: m, valueDim: dv, causal: false },
    note: 'median of 3 runs (1 from L = 8192); rpe-fft = Float64 FFT Toeplitz products on the CPU side',
  },
  results,
};
const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'rpe-wasm-node.json');
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
