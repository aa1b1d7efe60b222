import {
  gaussianIid,
  gaussianOrthogonal,
  type RandomSource,
  type RowScaling,
} from '@kernel-attention/random-features';

import type { FeatureMap } from './feature-map.js';
import { hyperbolicSoftmax, positiveSoftmax } from './positive-softmax.js';
import { trigSoftmax } from './trig-softmax.js';
import { assertOptions } from './validate.js';
import { describe } from './validate-number.js';

export type SoftmaxKernelOptions = RandomSource & {
  /** 'positive' (FAVOR+, default), 'hyperbolic' or 'trig'. */
  kind?: 'positive' | 'hyperbolic' | 'trig';
  /** Block-orthogonal ω (default true) or IID. */
  orthogonal?: boolean;
  scaling?: RowScaling;
  /**
   * Added to every positive or hyperbolic feature before its ratio, relative to the largest
   * feature the keys of a query see (default 1e-4, performer-pytorch's value). Measured on a
   * trained model's heads and on Gaussian inputs it never raised the error against eps = 0 and
   * lowered it where features are noisy (see the "Performer on real text" page of the docs).
   */
  eps?: number;
  stabilize?: boolean;
};

/** softmaxKernelFeatures' eps for positive and hyperbolic maps. */
export const DEFAULT_EPS = 1e-4;

/**
 * Samples a projection W [m, d] from the seed and returns the softmax-kernel feature map.
 * m counts random vectors ω; trig and hyperbolic maps output 2m features.
 *
 * @param d - the head size
 * @param m - the number of random projections (features: m, or 2m for hyperbolic and trig)
 * @param opts - `{ seed, kind, orthogonal, scaling, eps, stabilize }` (see SoftmaxKernelOptions); seed is required
 *
 * @example
 * ```ts
 * import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
 * const phi = softmaxKernelFeatures(64, 256, { seed: 0 }); // FAVOR+, orthogonal, chi scaling
 * ```
 */
export function softmaxKernelFeatures(
  d: number,
  m: number,
  opts: SoftmaxKernelOptions,
): FeatureMap & { dispose(): void } {
  const fn = 'softmaxKernelFeatures';
  for (const [name, v] of [
    ['d', d],
    ['m', m],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0)
      throw new RangeError(`${fn}: ${name} must be a positive integer, got ${describe(v)}`);
  }
  assertOptions(fn, opts, '{ seed } or { rng }');
  const kind = opts.kind ?? 'positive';
  const source: RandomSource =
    opts.rng !== undefined ? { rng: opts.rng } : { seed: opts.seed as number };
  const projection =
    (opts.orthogonal ?? true)
      ? gaussianOrthogonal(m, d, { ...source, scaling: opts.scaling ?? 'chi' })
      : gaussianIid(m, d, source);
  const stabilize = opts.stabilize ?? true;
  switch (kind) {
    case 'positive':
      return positiveSoftmax({ projection, eps: opts.eps ?? DEFAULT_EPS, stabilize });
    case 'hyperbolic':
      return hyperbolicSoftmax({ projection, eps: opts.eps ?? DEFAULT_EPS, stabilize });
    case 'trig':
      return trigSoftmax({ projection, stabilize });
    default:
      throw new RangeError(
        `${fn}: kind must be 'positive', 'hyperbolic' or 'trig', got ${describe(kind)}`,
      );
  }
}
