import { PositiveFeatures, positiveFeaturesSpec } from '@kernel-attention/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { GroupMaxProgram, PositiveFeaturesProgram } from '../positive-features-program.js';

/**
 * x [G, L, d], projection [d, m] → features [G, L, m'] in one program ('row', 'none'); keys with the
 * per-group stabilizer ('group') take three: the row maxima, their maximum per group, the features.
 */
const positiveFeatures: KernelFunc = ({ inputs, backend, attrs }) => {
  const spec = positiveFeaturesSpec(inputs, attrs);
  const { x, projection } = inputs as { x: TensorInfo; projection: TensorInfo }; // checked by positiveFeaturesSpec
  const gpu = backend as WebGPUBackend;
  if (spec.stabilizer !== 'group') {
    return gpu.runWebGPUProgram(
      new PositiveFeaturesProgram(spec, spec.stabilizer),
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
    const shift = gpu.runWebGPUProgram(
      new GroupMaxProgram(spec.groups, spec.length),
      [rowMax],
      'float32',
    );
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
