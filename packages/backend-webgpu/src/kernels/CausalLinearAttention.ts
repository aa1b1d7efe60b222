import { CausalLinearAttention, type CausalLinearAttentionInputs } from '@kernel-attention/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { LinearAttentionProgram } from '../linear-attention-program.js';

/**
 * Runs LinearAttentionProgram: qFeat, kFeat [G, L, m], vOnes [G, L, w], qLog, kLog [G, L, 1] →
 * [G, L, w].
 */
const causalLinearAttention: KernelFunc = ({ inputs, backend }) => {
  const { qFeat, kFeat, vOnes, qLog, kLog } = inputs as CausalLinearAttentionInputs;
  if (!qFeat || !kFeat || !vOnes || !qLog || !kLog) {
    throw new Error(
      `${CausalLinearAttention}: inputs qFeat, kFeat, vOnes, qLog and kLog are required`,
    );
  }
  const [G, L, m] = qFeat.shape as [number, number, number];
  const w = vOnes.shape[2]!;
  const program = new LinearAttentionProgram(G, L, m, w);
  return (backend as WebGPUBackend).runWebGPUProgram(
    program,
    [qFeat, kFeat, vOnes, qLog, kLog],
    'float32',
  );
};

export const causalLinearAttentionConfig: KernelConfig = {
  kernelName: CausalLinearAttention,
  backendName: 'webgpu',
  kernelFunc: causalLinearAttention,
};
