import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { positiveSoftmax } from './positive-softmax.js';

describe('positiveSoftmax', () => {
  const d = 8;
  const w = gaussianOrthogonal(12, d, { seed: 3 });

  it('stabilized features equal the textbook ones up to the documented constant factors', () => {
    const x = tf.randomNormal([5, d], 0, 0.5, 'float32', 9);
    const plain = positiveSoftmax({ projection: w, eps: 0, stabilize: false });
    const stab = positiveSoftmax({ projection: w, eps: 0 });
    for (const role of ['query', 'key'] as const) {
      const ratio = tf.tidy(() => tf.div(stab.features(x, role), plain.features(x, role)));
      const r = ratio.arraySync() as number[][];
      // query: one factor per row; key: one factor for the whole (batch, head) = the whole matrix here
      for (const row of r) for (const v of row) expect(v / row[0]!).toBeCloseTo(1, 5);
      if (role === 'key') for (const row of r) expect(row[0]! / r[0]![0]!).toBeCloseTo(1, 5);
      ratio.dispose();
    }
    tf.dispose(x);
  });

  it('positive features match the closed form for a hand-computed case', () => {
    // W = I (2×2), d = 2, c = 2^-1/4, x = (1, 0): u = (c, 0), |x̂|²/2 = c²/2, eps = 0, unstabilized
    const eye = { rows: 2, cols: 2, data: Float64Array.from([1, 0, 0, 1]) };
    const phi = positiveSoftmax({ projection: eye, eps: 0, stabilize: false });
    const f = phi.features(tf.tensor2d([[1, 0]]), 'query');
    const c = 2 ** -0.25;
    const expected = [Math.exp(c - (c * c) / 2) / Math.SQRT2, Math.exp(-(c * c) / 2) / Math.SQRT2];
    const got = f.dataSync();
    expect(got[0]).toBeCloseTo(expected[0]!, 6);
    expect(got[1]).toBeCloseTo(expected[1]!, 6);
    f.dispose();
  });

  it('a tensor projection is differentiable (trainable ω)', () => {
    const wt = tf.variable(tf.randomNormal([12, d], 0, 1, 'float32', 1));
    const phi = positiveSoftmax({ projection: wt as tf.Tensor2D });
    const x = tf.randomNormal([4, d], 0, 1, 'float32', 2);
    const g = tf.grad((p: tf.Tensor) =>
      tf.sum(positiveSoftmax({ projection: p as tf.Tensor2D }).features(x, 'query')),
    )(wt);
    expect(g.shape).toEqual([12, d]);
    expect(g.dataSync().every(Number.isFinite)).toBe(true);
    expect(tf.max(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([g, x, wt]);
    phi.dispose();
  });

  it('names the argument and the shape it got', () => {
    const w = gaussianOrthogonal(4, 8, { seed: 1 });
    const phi = positiveSoftmax({ projection: w });
    expect(() => phi.features(tf.zeros([2, 3, 5]), 'query')).toThrow(
      "positiveSoftmax.features: x must have last dimension 8 (the projection's columns), got shape [2,3,5]",
    );
    expect(() => phi.features(tf.zeros([8]), 'key')).toThrow(
      /x must be a tensor of rank >= 2 \[..., length, dim\], got shape \[8\]/,
    );
    expect(() => phi.features(tf.zeros([2, 8], 'int32'), 'key')).toThrow(
      /x must have dtype float32, got int32/,
    );
    // @ts-expect-error runtime check
    expect(() => phi.features(tf.zeros([2, 8]), 'value')).toThrow(
      /role must be 'query' or 'key', got "value"/,
    );
    // @ts-expect-error runtime check
    expect(() => phi.features([[1, 2]], 'query')).toThrow(
      /x must be a tf.Tensor, got a plain array \(wrap it with tf.tensor\)/,
    );
  });
});
