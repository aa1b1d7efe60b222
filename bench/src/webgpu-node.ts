/**
 * `pnpm bench` (WebGPU section): on WebGPU in Node (Dawn over Chromium's SwiftShader, i.e. on the
 * CPU), core's composite tfjs-ops path against the fused WGSL kernels of
 * @kernel-attention/backend-webgpu (gpu-cases.ts). SwiftShader is a CPU implementation: absolute
 * times mean nothing, the ratio is the point. Writes bench/results/webgpu-node.json.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bidirectionalLinearAttentionConfig,
  causalLinearAttentionConfig,
  positiveFeaturesConfig,
} from '@kernel-attention/backend-webgpu';
import { useBackend } from '@kernel-attention/core/testing';
import { runGpuCases, SHAPE } from './gpu-cases.js';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
await useBackend('webgpu');
const lengths = process.argv.includes('--quick') ? [1024] : [1024, 4096];

const results = await runGpuCases({
  configs: [
    causalLinearAttentionConfig,
    bidirectionalLinearAttentionConfig,
    positiveFeaturesConfig,
  ],
  lengths,
  log: (line) => process.stderr.write(`${line}\n`),
});
const target = results.find(
  (r) => r.op === 'causal-linear-attention' && r.length === 4096 && r.speedup !== null,
);
const speedup = target?.speedup ?? 0;
const out = {
  meta: {
    date: new Date().toISOString(),
    backend: 'webgpu (Node, webgpu/Dawn over SwiftShader)',
    shape: SHAPE,
    note: 'medians of 3; SwiftShader runs WebGPU on the CPU: compare ratios, not times',
  },
  results,
  targets: target
    ? [
        {
          name: 'fused / composite speed-up, causal, L=4096, m=128',
          value: Math.round(speedup * 100) / 100,
          target: '>= 3',
          met: speedup >= 3,
        },
      ]
    : [],
};
const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'webgpu-node.json');
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out.targets));
