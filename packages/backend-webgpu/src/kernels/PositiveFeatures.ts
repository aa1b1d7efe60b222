import {
  PositiveFeatures,
  type PositiveFeaturesAttrs,
  type PositiveFeaturesInputs,
} from '@kernel-attention/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import {
  GroupMaxProgram,
  PositiveFeaturesProgram,
  type PositiveFeaturesSpec,
} from '../positive-features-program.js';

/**
 * x [G, L, d], projection [d, m] → features [G, L, m'] in one program ('row', 'none'); keys with the
 * per-group stabilizer ('group') take three: the row maxima, their maximum per group, the features.
 */
const positiveFeatures: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, projection } = inputs as PositiveFeaturesInputs;
  if (!x || !projection)
    throw new Error(`${PositiveFeatures}: inputs x and projection are required`);
  const a = attrs as unknown as PositiveFeaturesAttrs;
  const [G, L, d] = x.shape as [number, number, number];
  const spec: PositiveFeaturesSpec = {
    groups: G,
    length: L,
    dim: d,
    features: projection.shape[1]!,
    symmetric: a.symmetric,
    halfNormScale: a.halfNormScale,
    logRatio: a.logRatio,
    floor: a.floor,
  };
  const gpu = backend as WebGPUBackend;
  if (a.stabilizer !== 'group') {
    return gpu.runWebGPUProgram(
      new PositiveFeaturesProgram(spec, a.stabilizer),
      [x, projection],
      'float32',
    );
  }
  const temps: TensorInfo[] = [];
  try {
    const rowMax = gpu.runWebGPUProgram(
      new PositiveFeaturesProgram(spec, 'rowmax'),
      [x, projection],
      'float32',
    );
    temps.push(rowMax);
    const shift = gpu.runWebGPUProgram(new GroupMaxProgram(G, L), [rowMax], 'float32');
    temps.push(shift);
    return gpu.runWebGPUProgram(
      new PositiveFeaturesProgram(spec, 'group'),
      [x, projection, shift],
      'float32',
    );
  } finally {
    for (const t of temps) gpu.disposeData(t.dataId);
  }
};

export const positiveFeaturesConfig: KernelConfig = {
  kernelName: PositiveFeatures,
  backendName: 'webgpu',
  kernelFunc: positiveFeatures,
};
