// Regression: unclear errors — every one of these ended in a raw JavaScript TypeError or
// RangeError (or a silent finite result); each now names the argument, what it got and what was
// expected.
import {
  type FeatureMap,
  optimizedPositiveSoftmax,
  softmaxKernelFeatures,
} from '@kernel-attention/feature-maps';
import {
  gaussianIid,
  gaussianOrthogonal,
  orthogonalFactor,
  type Rng,
  redrawSchedule,
} from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  bayesianAttention,
  causalState,
  favorAttention,
  favorCausalStep,
  gatedAttention,
  linearAttention,
  linearCausalStep,
  softmaxAttention,
  toeplitzMatmul,
} from './index.js';

const bad = <T>(x: unknown) => x as T;

describe('regression: unclear errors name the argument, what it got and what was expected', () => {
  it('samplers and schedules', () => {
    expect(() => bad<(r: number, c: number) => unknown>(gaussianOrthogonal)(8, 4)).toThrow(
      'gaussianOrthogonal: options { seed } or { rng } are required, got undefined',
    );
    expect(() => gaussianIid(8, 4, bad(null))).toThrow(
      'gaussianIid: options { seed } or { rng } are required, got null',
    );
    expect(() => gaussianOrthogonal(8, 4, { rng: bad<Rng>({}) })).toThrow(
      /gaussianOrthogonal: rng must be an Rng from createRng\(seed\) \(it lacks nextUint32, uniform, normal, normals, split, fold\)/,
    );
    expect(() => redrawSchedule(bad(null))).toThrow(
      'redrawSchedule: options { seed, every, rows, cols } are required, got null',
    );
    expect(() => orthogonalFactor(bad(null))).toThrow(
      'orthogonalFactor: a must be a Matrix { rows, cols, data: Float64Array of rows·cols values }, got null',
    );
  });

  it('sizes too large to allocate are refused with the sizes', () => {
    expect(() => gaussianIid(2 ** 27, 64, { seed: 0 })).toThrow(
      'gaussianIid: a 134217728×64 matrix would hold 8589934592 values (64.0 GiB as Float64), more than the 2147483647 one array can hold',
    );
    expect(() => softmaxKernelFeatures(64, 2 ** 27, { seed: 0 })).toThrow(
      /a 134217728×64 matrix would hold 8589934592 values/,
    );
    expect(() => causalState({ batch: 2 ** 27, heads: 64, numFeatures: 64, valueDim: 64 })).toThrow(
      /causalState: the state \[batch, heads, numFeatures, valueDim \+ 1\] would hold 35734127902720 float32 values \(133120\.0 GiB\), more than the 2147483647 a tensor can hold/,
    );
  });

  it('null options of the ops', () => {
    const x = tf.ones([1, 1, 3, 2]);
    expect(() => softmaxAttention(x, x, x, bad(null))).toThrow(
      'softmaxAttention: options { causal?, mask?, memory? } must be an object, got null',
    );
    expect(() => linearAttention(x, x, x, bad(null))).toThrow(
      /linearAttention: options .* must be an object, got null/,
    );
    expect(() => favorAttention(x, x, x, bad(null))).toThrow(
      'favorAttention: options { featureMap } are required, got null',
    );
    expect(() => toeplitzMatmul(tf.ones([5]), tf.ones([3, 1]), bad(null))).toThrow(
      'toeplitzMatmul: options { method? } must be an object, got null',
    );
    const state = causalState({ batch: 1, heads: 1, numFeatures: 2, valueDim: 2 });
    const t = tf.ones([1, 1, 1, 2]);
    expect(() => linearCausalStep(state, t, t, t, bad(null))).toThrow(
      /linearCausalStep: options .* must be an object, got null/,
    );
    expect(() => favorCausalStep(state, t, t, t, bad(null))).toThrow(
      'favorCausalStep: options { featureMap } are required, got null',
    );
    expect(() => causalState(bad(null))).toThrow(
      'causalState: options { batch, heads, numFeatures, valueDim } are required, got null',
    );
    tf.dispose([x, t]);
    state.dispose();
  });

  it('plain arrays where tensors go, and a user map that returns no tensor', () => {
    const phi = softmaxKernelFeatures(2, 4, { seed: 0 });
    const state = causalState({ batch: 1, heads: 1, numFeatures: 4, valueDim: 2 });
    const t = tf.ones([1, 1, 1, 2]);
    expect(() => favorCausalStep(state, t, t, t, { featureMap: phi, mask: bad([[1]]) })).toThrow(
      'favorCausalStep: mask must be a tf.Tensor, got a plain array (wrap it with tf.tensor)',
    );
    expect(() => favorAttention(bad([[1]]), t, t, { featureMap: phi })).toThrow(
      'favorAttention: q must be a tf.Tensor, got a plain array (wrap it with tf.tensor)',
    );
    const user: FeatureMap = { name: 'mine', numFeatures: 4, features: () => bad([1, 2, 3, 4]) };
    const x = tf.ones([1, 1, 3, 2]);
    for (const causal of [false, true]) {
      expect(() => favorAttention(x, x, x, { featureMap: user, causal })).toThrow(
        /favorAttention: featureMap mine must map \[G, L, d\] to float32 \[G, L, m'\] .* got a plain array/,
      );
    }
    expect(() => favorCausalStep(state, t, t, t, { featureMap: user })).toThrow(
      /favorCausalStep: the features must be float32 \[batch, heads, 1, numFeatures\] = \[1,1,1,4\] .* got query features a plain array/,
    );
    tf.dispose([t, x]);
    state.dispose();
    phi.dispose();
  });

  it('prepare() with queries, keys and keep of different (batch, head) groups', () => {
    const phi = optimizedPositiveSoftmax({ projection: gaussianOrthogonal(8, 4, { seed: 1 }) });
    expect(() => phi.prepare!(tf.ones([2, 3, 4]), tf.ones([3, 3, 4]), null)).toThrow(
      'optimizedPositiveSoftmax.prepare: q and k must have the same (batch, head) groups, got q [2,3,4] and k [3,3,4]',
    );
    expect(() => phi.prepare!(tf.ones([2, 3, 4]), tf.ones([2, 3, 4]), tf.ones([3, 3, 1]))).toThrow(
      'optimizedPositiveSoftmax.prepare: keep must have shape [groups, keyLength, 1] = [2,3,1], got [3,3,1]',
    );
    phi.dispose();
  });

  it('NaN gates reach the outputs that see them instead of becoming finite gates', async () => {
    const q = tf.randomNormal([1, 1, 4, 2], 0, 1, 'float32', 1);
    const phi = softmaxKernelFeatures(2, 8, { seed: 0 });
    const gates = tf.tensor2d([[1, Number.NaN, 1, 1]]);
    for (const opts of [
      { mode: 'hard' as const },
      { mode: 'relaxed' as const, seed: 1 },
      { mode: 'relaxed' as const, seed: 1, featureMap: phi },
    ]) {
      const { output, penalty } = gatedAttention(q, q, q, { gates, ...opts, returnPenalty: true });
      expect(Array.from(await output.data()).every(Number.isNaN)).toBe(true);
      expect(Number.isNaN((await penalty.data())[0])).toBe(true);
      // causal: query 0 does not see key 1, so only it stays finite
      const causal = await gatedAttention(q, q, q, { gates, ...opts, causal: true }).data();
      expect(Array.from(causal).map(Number.isNaN)).toEqual([
        false,
        false,
        true,
        true,
        true,
        true,
        true,
        true,
      ]);
      // a padded key's gate is ignored, as a padded value is
      const masked = await gatedAttention(q, q, q, {
        gates,
        ...opts,
        mask: tf.tensor2d([[1, 0, 1, 1]]),
      }).data();
      expect(Array.from(masked).every(Number.isFinite)).toBe(true);
    }
    tf.dispose([q, gates]);
    phi.dispose();
  });
});

describe('regression: sampling needs an explicit seed (no Math.random)', () => {
  it('relaxed gates and Bayesian training without a seed are clear errors', () => {
    const x = tf.ones([1, 1, 3, 2]);
    const gates = tf.ones([1, 3]);
    expect(() => gatedAttention(x, x, x, { gates, mode: 'relaxed' })).toThrow(
      'gatedAttention: relaxed gates are sampled: pass a seed (an integer; randomness is always explicit), got none',
    );
    expect(() => bayesianAttention(x, x, x, { training: true })).toThrow(
      'bayesianAttention: training samples the attention weights: pass a seed (an integer; randomness is always explicit), got none',
    );
    tf.dispose([x, gates]);
  });
});
