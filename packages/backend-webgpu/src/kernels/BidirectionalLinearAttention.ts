import {
  BidirectionalLinearAttention,
  type BidirectionalLinearAttentionInputs,
} from '@kernel-attention/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { LinearAttentionProgram } from '../linear-attention-program.js';

/** qFeat [G, Lq, m], kFeat [G, Lk, m], vOnes [G, Lk, w] → qFeat·(kFeatᵀ vOnes), [G, Lq, w]. */
const bidirectionalLinearAttention: KernelFunc = ({ inputs, backend }) => {
  const { qFeat, kFeat, vOnes } = inputs as BidirectionalLinearAttentionInputs;
  if (!qFeat || !kFeat || !vOnes) {
    throw new Error(`${BidirectionalLinearAttention}: inputs qFeat, kFeat and vOnes are required`);
  }
  const [G, Lq, m] = qFeat.shape as [number, number, number];
  const Lk = kFeat.shape[1]!;
  const w = vOnes.shape[2]!;
  const program = new LinearAttentionProgram(G, Lq, m, w, false, Lk);
  return (backend as WebGPUBackend).runWebGPUProgram(program, [qFeat, kFeat, vOnes], 'float32');
};

export const bidirectionalLinearAttentionConfig: KernelConfig = {
  kernelName: BidirectionalLinearAttention,
  backendName: 'webgpu',
  kernelFunc: bidirectionalLinearAttention,
};
