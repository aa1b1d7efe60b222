import { generalized, softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { favorAttention } from '../ops/favor/favor-attention.js';
import {
  type Array4,
  maxRelativeError,
  naiveLinearAttention,
  naiveSoftmaxAttention,
  rand4,
  randomArray,
} from '../testing/suites.js';
import { rpeFavorAttention } from './rpe-favor-attention.js';
import type { ToeplitzMethod } from './toeplitz.js';

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const methods: ToeplitzMethod[] = ['fft', 'toeplitz'];
const bias2 = (H: number, L: number, seed: number, scale = 0.5) =>
  tf.tensor2d(randomArray([H, 2 * L - 1], seed, scale), [H, 2 * L - 1]);

describe('rpeFavorAttention', () => {
  it.each(methods.flatMap((method) => [false, true].map((causal) => ({ method, causal }))))(
    'relativeBias ≡ 0 gives favorAttention ($method, causal=$causal, with padding)',
    async ({ method, causal }) => {
      const [B, H, L] = [2, 2, 70];
      const phi = softmaxKernelFeatures(8, 32, { seed: 1 });
      const q = rand4([B, H, L, 8], 1, 0.5);
      const k = rand4([B, H, L, 8], 2, 0.5);
      const v = rand4([B, H, L, 3], 3);
      const mask = tf.tensor2d([Array(L).fill(1), [...Array(L - 9).fill(1), ...Array(9).fill(0)]]);
      const relativeBias = tf.zeros([H, 2 * L - 1]);
      const a = rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, causal, mask, method });
      const b = favorAttention(q, k, v, { featureMap: phi, causal, mask });
      expect(maxRelativeError(await arr(a), await arr(b))).toBeLessThan(2e-5);
      tf.dispose([q, k, v, mask, relativeBias, a, b]);
      phi.dispose();
    },
  );

  it.each(methods.flatMap((method) => [false, true].map((causal) => ({ method, causal }))))(
    'with a deterministic map equals the dense c_{j−i}·φ(q_i)·φ(k_j) reference ($method, causal=$causal)',
    async ({ method, causal }) => {
      const [B, H, L, d] = [1, 3, 37, 5];
      const phi = generalized({ fn: 'elu+1', inputDim: d });
      const q = rand4([B, H, L, d], 4);
      const k = rand4([B, H, L, d], 5);
      const v = rand4([B, H, L, 4], 6);
      const relativeBias = bias2(H, L, 7);
      const out = rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, causal, method });
      const fq = phi.features(q, 'query'); // elu(d^-1/4·x) + 1 + kernelEps
      const fk = phi.features(k, 'key');
      const ref = naiveLinearAttention(await arr(fq), await arr(fk), await arr(v), {
        causal,
        relativeBias: (await relativeBias.array()) as number[][],
      });
      expect(maxRelativeError(await arr(out), ref)).toBeLessThan(2e-5);
      tf.dispose([q, k, v, relativeBias, out, fq, fk]);
    },
  );

  it('with positive random features approaches softmax-with-bias as m grows', async () => {
    const [B, H, L, d] = [1, 2, 48, 8];
    const q = rand4([B, H, L, d], 8, 0.4);
    const k = rand4([B, H, L, d], 9, 0.4);
    const v = rand4([B, H, L, 2], 10);
    const relativeBias = bias2(H, L, 11);
    const exact = naiveSoftmaxAttention(await arr(q), await arr(k), await arr(v), {
      relativeBias: (await relativeBias.array()) as number[][],
    });
    const mse = async (m: number) => {
      let total = 0;
      for (let seed = 0; seed < 4; seed++) {
        const phi = softmaxKernelFeatures(d, m, { seed });
        const out = rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias });
        const got = (await out.data()) as Float32Array;
        const flat = exact.flat(3);
        for (let i = 0; i < flat.length; i++) total += (got[i]! - flat[i]!) ** 2;
        out.dispose();
        phi.dispose();
      }
      return total;
    };
    const [small, large] = [await mse(8), await mse(256)];
    expect(large).toBeLessThan(small / 4);
    tf.dispose([q, k, v, relativeBias]);
  });

  it('no causal leak: changing future tokens leaves earlier outputs unchanged', async () => {
    const [B, H, L, d] = [1, 2, 20, 4];
    // a position-local map (no sequence-wide key stabilizer): any dependence would be the Toeplitz's
    const phi = generalized({ fn: 'elu+1', inputDim: d });
    const relativeBias = bias2(H, L, 12, 2);
    const q = rand4([B, H, L, d], 13);
    const v = rand4([B, H, L, 3], 14);
    const q2 = tf.concat([tf.slice(q, [0, 0, 0, 0], [B, H, 12, d]), rand4([B, H, 8, d], 15, 5)], 2);
    const v2 = tf.concat([tf.slice(v, [0, 0, 0, 0], [B, H, 12, 3]), rand4([B, H, 8, 3], 16, 5)], 2);
    for (const method of methods) {
      const a = rpeFavorAttention(q, q, v, { featureMap: phi, relativeBias, causal: true, method });
      const b = rpeFavorAttention(q2, q2, v2, {
        featureMap: phi,
        relativeBias,
        causal: true,
        method,
      });
      const head = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 0], [B, H, 12, 3]);
      expect(maxRelativeError(await arr(head(a)), await arr(head(b)))).toBeLessThan(1e-4);
      tf.dispose([a, b]);
    }
    tf.dispose([q, v, q2, v2, relativeBias]);
    phi.dispose();
  });

  it('gradients reach q, k, v and the bias, equal for both methods', async () => {
    const [B, H, L, d] = [1, 2, 9, 4];
    const phi = softmaxKernelFeatures(d, 8, { seed: 5 });
    const q = rand4([B, H, L, d], 17, 0.5);
    const k = rand4([B, H, L, d], 18, 0.5);
    const v = rand4([B, H, L, 2], 19);
    const b = bias2(H, L, 20);
    const grads = methods.map((method) =>
      tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(
          tf.square(
            rpeFavorAttention(qq, kk, vv, {
              featureMap: phi,
              relativeBias: bb,
              causal: true,
              method,
            }),
          ),
        ),
      )([q, k, v, b]),
    );
    for (let i = 0; i < 4; i++) {
      const [x, y] = [await grads[0]![i]!.data(), await grads[1]![i]!.data()];
      expect(x.every(Number.isFinite)).toBe(true);
      expect(Math.max(...Array.from(x, Math.abs))).toBeGreaterThan(0);
      expect(maxRelativeError(Array.from(x), Array.from(y))).toBeLessThan(1e-4);
    }
    // the bias gradient against central finite differences
    const loss = (bb: tf.Tensor) =>
      tf.tidy(
        () =>
          tf
            .sum(
              tf.square(
                rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias: bb, causal: true }),
              ),
            )
            .dataSync()[0]!,
      );
    const gb = await grads[0]![3]!.data();
    for (const index of [2, 8, 11]) {
      const h = 1e-2;
      const e = tf.mul(tf.oneHot(index, b.size).reshape(b.shape), h);
      const fd = (loss(tf.add(b, e)) - loss(tf.sub(b, e))) / (2 * h);
      expect(gb[index]!).toBeCloseTo(fd, 2);
      e.dispose();
    }
    tf.dispose([q, k, v, b, ...grads.flat()]);
    phi.dispose();
  });

  it('normalize: ℓ2-normalized q and k with a learned scale (the gradient reaches it)', async () => {
    const [B, H, L, d] = [1, 1, 12, 4];
    const phi = generalized({ fn: 'exp', inputDim: d });
    const q = rand4([B, H, L, d], 21, 30); // large norms: normalization keeps exp finite
    const k = rand4([B, H, L, d], 22, 30);
    const v = rand4([B, H, L, 2], 23);
    const relativeBias = tf.zeros([H, 2 * L - 1]);
    const scale = tf.variable(tf.scalar(2));
    const out = rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, normalize: { scale } });
    const unit = (x: tf.Tensor) => tf.div(x, tf.norm(x, 'euclidean', -1, true));
    const factor = Math.sqrt(2) * d ** 0.25;
    const ref = rpeFavorAttention(tf.mul(unit(q), factor), tf.mul(unit(k), factor), v, {
      featureMap: phi,
      relativeBias,
    });
    expect((await out.data()).every(Number.isFinite)).toBe(true);
    expect(maxRelativeError(await arr(out), await arr(ref))).toBeLessThan(1e-5);
    const { grads } = tf.variableGrads(
      () =>
        tf.sum(
          tf.square(
            rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, normalize: { scale } }),
          ),
        ) as tf.Scalar,
      [scale],
    );
    expect(Math.abs((await grads[scale.name]!.data())[0]!)).toBeGreaterThan(0);
    tf.dispose([q, k, v, relativeBias, scale, out, ref, ...Object.values(grads)]);
  });

  it('frees its intermediates', () => {
    const phi = softmaxKernelFeatures(4, 8, { seed: 1 });
    const q = rand4([1, 2, 70, 4], 1);
    const b = bias2(2, 70, 2);
    phi.features(q, 'query').dispose(); // warm the projection cache
    const before = tf.memory().numTensors;
    for (const method of methods)
      for (const causal of [false, true])
        rpeFavorAttention(q, q, q, { featureMap: phi, relativeBias: b, causal, method }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, b]);
    phi.dispose();
  });

  it('rejects bad input with the argument, what it got and what was expected', () => {
    const phi = softmaxKernelFeatures(4, 8, { seed: 1 });
    const q = tf.zeros([1, 2, 5, 4]);
    const featureMap = phi;
    expect(() =>
      rpeFavorAttention(q, q, q, { featureMap, relativeBias: tf.zeros([2, 8]) }),
    ).toThrow(/relativeBias must have shape \[heads, 2L − 1\] = \[2,9\], got \[2,8\]/);
    expect(() => rpeFavorAttention(q, q, q, { featureMap, relativeBias: tf.zeros([9]) })).toThrow(
      /relativeBias/,
    );
    expect(() =>
      rpeFavorAttention(q, tf.zeros([1, 2, 6, 4]), tf.zeros([1, 2, 6, 4]), {
        featureMap,
        relativeBias: tf.zeros([2, 9]),
      }),
    ).toThrow(/relative positions need as many queries as keys/);
    expect(() =>
      rpeFavorAttention(q, q, q, {
        featureMap,
        relativeBias: tf.zeros([2, 9]),
        normalize: { scale: -1 },
      }),
    ).toThrow(
      /normalize.scale must be a positive finite number or a float32 scalar tensor, got -1/,
    );
    expect(() =>
      rpeFavorAttention(q, q, q, {
        featureMap,
        relativeBias: tf.zeros([2, 9]),
        method: 'dense' as ToeplitzMethod,
      }),
    ).toThrow(/method must be 'fft' or 'toeplitz'/);
    expect(() => rpeFavorAttention(q, q, q, { relativeBias: tf.zeros([2, 9]) } as never)).toThrow(
      /featureMap/,
    );
    phi.dispose();
  });
});
