/**
 * `pnpm bench:combiner` (also run by `pnpm bench`): Combiner's fixed, axial and logsparse plans
 * against exact softmax attention (core's softmaxAttention) on the wasm backend in Node, batch 1,
 * 8 heads, d = 64, L = 1024 … 16384, bidirectional and causal: median time and peak tensor bytes
 * (tf.profile). Writes bench/results/combiner-wasm-node.json with the growth of time per doubling
 * of L (O(L√L) gives ×2.83, O(L log L) just over ×2, O(L²) ×4).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { combinerAttention, softmaxAttention } from '@kernel-attention/core';
import { useBackend } from '@kernel-attention/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { medianTensorMs } from './timing.js';

await useBackend('wasm');
const [H, d] = [8, 64];
const quick = process.argv.includes('--quick');
const lengths = quick ? [1024, 2048] : [1024, 2048, 4096, 8192, 16384];

type Op = 'fixed' | 'axial' | 'logsparse' | 'exact';
const results: {
  op: Op;
  causal: boolean;
  length: number;
  medianMs: number;
  peakTensorBytes: number;
}[] = [];
for (const L of lengths) {
  const q = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 1);
  const k = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 2);
  const v = tf.randomNormal([1, H, L, d], 0, 1, 'float32', 3);
  for (const causal of [false, true]) {
    for (const op of ['fixed', 'axial', 'logsparse', 'exact'] as Op[]) {
      const call = () =>
        op === 'exact'
          ? softmaxAttention(q, k, v, { causal })
          : combinerAttention(q, k, v, { variant: op, causal });
      const runs = L >= 8192 ? 1 : 3;
      const medianMs = await medianTensorMs(call, runs);
      const info = await tf.profile(call);
      (info.result as tf.Tensor).dispose();
      results.push({ op, causal, length: L, medianMs, peakTensorBytes: info.peakBytes });
      process.stderr.write(
        `${op} causal=${causal} L=${L}: ${medianMs.toFixed(0)} ms, peak ${(info.peakBytes / 2 ** 20).toFixed(0)} MiB\n`,
      );
    }
  }
  tf.dispose([q, k, v]);
}
const growth = results.map((r) => {
  const prev = results.find(
    (p) => p.op === r.op && p.causal === r.causal && p.length * 2 === r.length,
  );
  return {
    ...r,
    timeGrowthPerDoubling: prev ? Math.round((r.medianMs / prev.medianMs) * 100) / 100 : null,
  };
});
const out = {
  meta: {
    date: new Date().toISOString(),
    backend: 'wasm (Node, single thread)',
    shape: { batch: 1, heads: H, dim: d, blockSize: '⌈√L⌉', pooling: 'max' },
    note: 'median of 3 runs (1 from L = 8192); peak tensor bytes from tf.profile',
  },
  results: growth,
};
const file = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'results',
  'combiner-wasm-node.json',
);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
