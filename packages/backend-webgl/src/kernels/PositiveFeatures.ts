import { PositiveFeatures, positiveFeaturesSpec } from '@kernel-attention/core';
import type { MathBackendWebGL } from '@tensorflow/tfjs-backend-webgl';
import {
  getKernel,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import {
  FeaturesEpilogueProgram,
  GroupMaxProgram,
  RowStatsProgram,
} from '../positive-features-program.js';

/**
 * x [G, L, d], projection [d, m] → features [G, L, m']: u = x·P by tfjs's own (packed) WebGL
 * matmul, then the row statistics, the group maxima ('group' only) and the features — three or
 * four programs where the composite path runs about a dozen.
 */
const positiveFeatures: KernelFunc = ({ inputs, backend, attrs }) => {
  const spec = positiveFeaturesSpec(inputs, attrs);
  const { x, projection } = inputs as { x: TensorInfo; projection: TensorInfo }; // checked by positiveFeaturesSpec
  const gl = backend as MathBackendWebGL;
  const matMul = getKernel('BatchMatMul', 'webgl');
  if (matMul === undefined) throw new Error(`${PositiveFeatures}: webgl has no BatchMatMul kernel`);
  const temps: TensorInfo[] = [];
  try {
    const u = matMul.kernelFunc({
      inputs: { a: x, b: projection },
      backend,
      attrs: { transposeA: false, transposeB: false } as NamedAttrMap,
    }) as TensorInfo;
    temps.push(u);
    const stats = gl.runWebGLProgram(new RowStatsProgram(spec), [u, x], 'float32');
    temps.push(stats);
    const program = new FeaturesEpilogueProgram(spec);
    if (spec.stabilizer !== 'group') return gl.runWebGLProgram(program, [u, stats], 'float32');
    const groupMax = gl.runWebGLProgram(
      new GroupMaxProgram(spec.groups, spec.length),
      [stats],
      'float32',
    );
    temps.push(groupMax);
    return gl.runWebGLProgram(program, [u, stats, groupMax], 'float32');
  } finally {
    for (const t of temps) gl.disposeIntermediateTensorInfo(t);
  }
};

export const positiveFeaturesConfig: KernelConfig = {
  kernelName: PositiveFeatures,
  backendName: 'webgl',
  kernelFunc: positiveFeatures,
};
