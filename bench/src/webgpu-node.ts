/**
 * `pnpm bench` (WebGPU section): causal linear attention on WebGPU in Node (Dawn over Chromium's
 * SwiftShader, i.e. on the CPU), the composite tfjs-ops path against the fused WGSL kernel of
 * @kernel-attention/backend-webgpu, batch 1, 8 heads, m = 128, dv = 64. SwiftShader is a CPU
 * implementation: absolute times mean nothing, the ratio is the point. Writes
 * bench/results/webgpu-node.json. Causal and bidirectional.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bidirectionalLinearAttentionConfig,
  causalLinearAttentionConfig,
  register,
} from '@kernel-attention/backend-webgpu';
import { linearAttention } from '@kernel-attention/core';
import { useBackend } from '@kernel-attention/core/testing';
import * as tf from '@tensorflow/tfjs-core';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
await useBackend('webgpu');
const H = 8;
const m = 128;
const dv = 64;
const lengths = process.argv.includes('--quick') ? [1024] : [1024, 4096];
const runs = 3;

async function median(f: () => tf.Tensor): Promise<number> {
  await f().data(); // warm-up (shader compilation)
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const out = f();
    await out.data();
    times.push(performance.now() - t0);
    out.dispose();
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

const results = [];
const configs = [causalLinearAttentionConfig, bidirectionalLinearAttentionConfig];
for (const causal of [true, false]) {
  for (const L of lengths) {
    const qf = tf.abs(tf.randomNormal([1, H, L, m], 0, 1, 'float32', 1));
    const kf = tf.abs(tf.randomNormal([1, H, L, m], 0, 1, 'float32', 2));
    const v = tf.randomNormal([1, H, L, dv], 0, 1, 'float32', 3);
    const call = () => linearAttention(qf, kf, v, { causal });
    for (const c of configs)
      if (tf.getKernel(c.kernelName, 'webgpu')) tf.unregisterKernel(c.kernelName, 'webgpu');
    const compositeMs = await median(call); // composite first
    register();
    const fusedMs = await median(call);
    const op = causal ? 'causal-linear-attention' : 'bidirectional-linear-attention';
    results.push({ op, length: L, compositeMs, fusedMs, speedup: compositeMs / fusedMs });
    process.stderr.write(
      `${op} L=${L}: composite ${compositeMs.toFixed(0)} ms, fused ${fusedMs.toFixed(0)} ms, ${(compositeMs / fusedMs).toFixed(2)}×\n`,
    );
    tf.dispose([qf, kf, v]);
  }
}
const target = results.find((r) => r.op === 'causal-linear-attention' && r.length === 4096);
const out = {
  meta: {
    date: new Date().toISOString(),
    backend: 'webgpu (Node, webgpu/Dawn over SwiftShader)',
    shape: { batch: 1, heads: H, features: m, valueDim: dv },
    note: 'medians of 3; SwiftShader runs WebGPU on the CPU: compare ratios, not times',
  },
  results,
  targets: target
    ? [
        {
          name: 'fused / composite speed-up, causal, L=4096, m=128',
          value: Math.round(target.speedup * 100) / 100,
          target: '>= 3',
          met: target.speedup >= 3,
        },
      ]
    : [],
};
const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'webgpu-node.json');
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out.targets));
