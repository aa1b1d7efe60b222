// The fused kernels are really the ones that run once registered (the parity suite would also
// pass on the composite path, so this checks the dispatch itself).
import { favorAttention, linearAttention } from '@kernel-attention/core';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { register } from './index.js';

it.each([false, true])(
  'favorAttention and linearAttention (causal=%s) run the fused kernel',
  async (causal) => {
    register();
    const phi = softmaxKernelFeatures(8, 16, { seed: 1 });
    const q = tf.randomNormal([1, 2, 10, 8], 0, 1, 'float32', 3);
    const f = tf.abs(q);
    const name = causal ? 'KaCausalLinearAttention' : 'KaBidirectionalLinearAttention';
    const kernels = async (fn: () => tf.Tensor) => {
      const info = await tf.profile(fn);
      (info.result as tf.Tensor).dispose();
      return info.kernels.map((k) => k.name);
    };
    expect(await kernels(() => favorAttention(q, q, q, { featureMap: phi, causal }))).toContain(
      name,
    );
    expect(await kernels(() => linearAttention(f, f, q, { causal }))).toContain(name);
    tf.dispose([q, f]);
    phi.dispose();
  },
);
