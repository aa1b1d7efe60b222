/**
 * Fused WebGPU (WGSL) kernels for `@kernel-attention/core`: call `register()` once, after
 * importing `@tensorflow/tfjs-backend-webgpu`.
 *
 * @module @kernel-attention/backend-webgpu
 */
import { getKernel, registerKernel } from '@tensorflow/tfjs-core';
import { bidirectionalLinearAttentionConfig } from './kernels/BidirectionalLinearAttention.js';
import { causalLinearAttentionConfig } from './kernels/CausalLinearAttention.js';
import { positiveFeaturesConfig } from './kernels/PositiveFeatures.js';

export { LinearAttentionProgram } from './linear-attention-program.js';
export { GroupMaxProgram, PositiveFeaturesProgram } from './positive-features-program.js';
export { bidirectionalLinearAttentionConfig, causalLinearAttentionConfig, positiveFeaturesConfig };

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
  for (const config of [
    causalLinearAttentionConfig,
    bidirectionalLinearAttentionConfig,
    positiveFeaturesConfig,
  ]) {
    if (getKernel(config.kernelName, config.backendName) === undefined) registerKernel(config);
  }
}
