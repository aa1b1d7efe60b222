import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { FeatureMap } from './feature-map.js';
import { generalized } from './generalized.js';
import { hyperbolicSoftmax, positiveSoftmax } from './positive-softmax.js';
import { softmaxKernelFeatures } from './softmax-kernel-features.js';
import { trigSoftmax } from './trig-softmax.js';

/** The FeatureMap contract, checked on every exported map. */
describe('every feature map: shapes, stabilizers and extremes', () => {
  const d = 8;
  const w = gaussianOrthogonal(12, d, { seed: 3 });
  const maps: [string, () => FeatureMap & { dispose(): void }, number][] = [
    ['positiveSoftmax', () => positiveSoftmax({ projection: w }), 12],
    ['hyperbolicSoftmax', () => hyperbolicSoftmax({ projection: w }), 24],
    ['trigSoftmax', () => trigSoftmax({ projection: w }), 24],
    ['generalized relu', () => generalized({ projection: w, fn: 'relu' }), 12],
    ['generalized elu+1 (no projection)', () => generalized({ fn: 'elu+1', inputDim: d }), d],
    ['generalized exp', () => generalized({ projection: w, fn: 'exp' }), 12],
  ];

  it.each(maps)(
    '%s maps [..., L, d] to [..., L, numFeatures] without leaking tensors',
    (_, make, mPrime) => {
      const phi = make();
      const x = tf.randomNormal([2, 3, 5, d], 0, 1, 'float32', 1);
      phi.features(x, 'query').dispose(); // warm the per-backend projection cache
      const before = tf.memory().numTensors;
      for (const role of ['query', 'key'] as const) {
        const f = phi.features(x, role);
        expect(f.shape).toEqual([2, 3, 5, mPrime]);
        expect(phi.numFeatures).toBe(mPrime);
        f.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      phi.dispose();
      x.dispose();
    },
  );

  it.each(maps)('%s gives finite features for inputs with norms up to 1e3', (_, make) => {
    const phi = make();
    for (const norm of [1e-30, 1e-3, 1, 30, 1e3]) {
      const x = tf.tidy(() => {
        const r = tf.randomNormal([1, 2, 7, d], 0, 1, 'float32', 5);
        return tf.mul(tf.div(r, tf.norm(r, 'euclidean', -1, true)), norm);
      });
      for (const role of ['query', 'key'] as const) {
        const f = phi.features(x, role);
        const vals = f.dataSync();
        expect(vals.every(Number.isFinite)).toBe(true);
        f.dispose();
      }
      x.dispose();
    }
    phi.dispose();
  });

  it('the key stabilizer never mixes batches or heads; the query stabilizer is per row', () => {
    for (const phi of [
      positiveSoftmax({ projection: w }),
      hyperbolicSoftmax({ projection: w }),
      trigSoftmax({ projection: w }),
    ]) {
      // head (0,1) has huge-norm keys; if the stabilizer leaked across heads, head (0,0) would underflow
      const x = tf.tidy(() =>
        tf.concat(
          [
            tf.randomNormal([1, 1, 6, d], 0, 0.5, 'float32', 2),
            tf.randomNormal([1, 1, 6, d], 0, 30, 'float32', 3),
          ],
          1,
        ),
      );
      for (const role of ['query', 'key'] as const) {
        const whole = phi.features(x, role);
        for (let h = 0; h < 2; h++) {
          const part = tf.slice(x, [0, h, 0, 0], [1, 1, 6, d]);
          const alone = phi.features(part, role);
          const fromWhole = tf.slice(whole, [0, h, 0, 0], [1, 1, 6, phi.numFeatures]);
          expect(Array.from(fromWhole.dataSync())).toEqual(Array.from(alone.dataSync()));
          tf.dispose([part, alone, fromWhole]);
        }
        whole.dispose();
      }
      x.dispose();
      phi.dispose();
    }
  });

  it('keyParts reproduce the key features: exp(logScale − max logScale)·base + floor', () => {
    const x = tf.randomNormal([2, 2, 6, d], 0, 1, 'float32', 4);
    for (const phi of [
      positiveSoftmax({ projection: w, eps: 1e-4 }),
      hyperbolicSoftmax({ projection: w }),
      trigSoftmax({ projection: w }),
    ]) {
      const direct = phi.features(x, 'key');
      const { base, logScale, floor } = phi.keyParts!(x);
      const rebuilt = tf.tidy(() =>
        tf.add(tf.mul(base, tf.exp(tf.sub(logScale, tf.max(logScale, [2, 3], true)))), floor),
      );
      const a = direct.dataSync();
      const b = rebuilt.dataSync();
      for (let i = 0; i < a.length; i++) expect(b[i]!).toBeCloseTo(a[i]!, 6);
      tf.dispose([direct, base, logScale, rebuilt]);
    }
    x.dispose();
  });
});

describe('every feature map: bad options', () => {
  const w = gaussianOrthogonal(4, 8, { seed: 1 });
  it('rejects bad options', () => {
    expect(() => positiveSoftmax({ projection: w, eps: -1 })).toThrow(
      /eps must be a finite number >= 0, got -1/,
    );
    expect(() => positiveSoftmax({ projection: w, eps: Number.NaN })).toThrow(/got NaN/);
    expect(() => positiveSoftmax({ projection: tf.zeros([3]) as unknown as tf.Tensor2D })).toThrow(
      /projection must be a rank-2 tensor \[numFeatures, dim\], got shape \[3\]/,
    );
    expect(() =>
      positiveSoftmax({ projection: { rows: 2, cols: 2, data: new Float64Array(3) } }),
    ).toThrow(/data.length = rows·cols/);
    // @ts-expect-error runtime check
    expect(() => generalized({ fn: 'tanh' })).toThrow(
      /fn must be 'relu', 'elu\+1', 'exp' or a function, got "tanh"/,
    );
    expect(() => generalized({ fn: 'relu' }).numFeatures).toThrow(/pass inputDim/);
    expect(() => softmaxKernelFeatures(0, 4, { seed: 1 })).toThrow(
      /d must be a positive integer, got 0/,
    );
    // @ts-expect-error runtime check
    expect(() => softmaxKernelFeatures(4, 4, { seed: 1, kind: 'cosine' })).toThrow(/kind must be/);
  });
});
