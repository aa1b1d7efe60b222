/**
 * Fused WebGL kernels for `@kernel-attention/core`: call `register()` once, after importing
 * `@tensorflow/tfjs-backend-webgl`.
 *
 * @module @kernel-attention/backend-webgl
 */
import { getKernel, registerKernel } from '@tensorflow/tfjs-core';
import { positiveFeaturesConfig } from './kernels/PositiveFeatures.js';

export {
  FeaturesEpilogueProgram,
  GroupMaxProgram,
  RowStatsProgram,
} from './positive-features-program.js';
export { positiveFeaturesConfig };

/** Every kernel config this package registers. */
export const kernelConfigs = [positiveFeaturesConfig];

/**
 * Registers the fused WebGL kernels of @kernel-attention/core for tfjs's 'webgl' backend
 * (idempotent): the positive and hyperbolic softmax features. Linear attention itself stays on
 * core's composite path on WebGL (tfjs's packed matmuls), for the reasons in
 * docs/decisions/2026-11-24-webgl-fused-kernels.md.
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-webgl';
 * import { register } from '@kernel-attention/backend-webgl';
 * register();
 * ```
 */
export function register(): void {
  for (const config of kernelConfigs) {
    if (getKernel(config.kernelName, config.backendName) === undefined) registerKernel(config);
  }
}
