import { getKernel, registerKernel } from '@tensorflow/tfjs-core';
import { causalLinearAttentionConfig } from './kernels/CausalLinearAttention.js';

export { CausalLinearAttentionProgram } from './causal-linear-attention-program.js';
export { causalLinearAttentionConfig };

/**
 * Registers the fused WebGPU kernels of @kernel-attention/core for tfjs's 'webgpu' backend
 * (idempotent). Core then runs them instead of its composite path while that backend is active.
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-webgpu';
 * import { register } from '@kernel-attention/backend-webgpu';
 * register();
 * ```
 */
export function register(): void {
  for (const config of [causalLinearAttentionConfig]) {
    if (getKernel(config.kernelName, config.backendName) === undefined) registerKernel(config);
  }
}
