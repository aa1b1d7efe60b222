/**
 * The browser half of `pnpm bench:browser` (src/browser.ts opens this page in headless Chromium):
 * ?backend=webgl|webgpu|wasm&lengths=1024,4096. GPU backends time fused against composite
 * (gpu-cases.ts); wasm, which has no fused kernels, times core's composite FAVOR+, alone and shared
 * with a Web Worker (createAttentionPool).
 * Publishes window.__bench = { results } or { error }.
 */
import { kernelConfigs as webglConfigs } from '@kernel-attention/backend-webgl';
import {
  bidirectionalLinearAttentionConfig,
  causalLinearAttentionConfig,
  positiveFeaturesConfig,
} from '@kernel-attention/backend-webgpu';
import { setBrowserWasmPaths, useBackend } from '@kernel-attention/core/testing';
import type * as tf from '@tensorflow/tfjs-core';
import { runGpuCases, runPoolCases } from '../src/gpu-cases.js';

const params = new URLSearchParams(location.search);
const backend = params.get('backend') ?? 'webgl';
const lengths = (params.get('lengths') ?? '1024').split(',').map(Number);
const log = (line: string) => {
  document.getElementById('log')!.textContent += `${line}\n`;
  console.log(line);
};
const configs: Record<string, tf.KernelConfig[]> = {
  webgl: webglConfigs,
  webgpu: [causalLinearAttentionConfig, bidirectionalLinearAttentionConfig, positiveFeaturesConfig],
  wasm: [],
};

const w = window as unknown as { __bench?: unknown };
try {
  if (backend === 'wasm') await setBrowserWasmPaths();
  await useBackend(backend);
  const results = await runGpuCases({ configs: configs[backend] ?? [], lengths, log });
  // wasm: the page plus one Web Worker (createAttentionPool's browser form) against the page alone
  const pool = backend === 'wasm' ? await runPoolCases({ lengths, log }) : undefined;
  w.__bench = { backend, results, ...(pool ? { pool } : {}) };
} catch (e) {
  w.__bench = { backend, error: String((e as Error)?.stack ?? e) };
}
