import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { expectNoLeak, randomArray } from '../testing/suites.js';
import { type ToeplitzMethod, toeplitzMatmul, toeplitzMatrix } from './toeplitz.js';

/** Float64 reference: (C x)_i = Σ_j c[j − i + L − 1] x_j for one batch item (x row-major [L, n]). */
function naive(c: ArrayLike<number>, x: ArrayLike<number>, L: number, n: number): number[] {
  const y: number[] = [];
  for (let i = 0; i < L; i++)
    for (let col = 0; col < n; col++) {
      let s = 0;
      for (let j = 0; j < L; j++) s += c[j - i + L - 1]! * x[j * n + col]!;
      y.push(s);
    }
  return y;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const methods: ToeplitzMethod[] = ['fft', 'toeplitz'];

describe('toeplitzMatmul', () => {
  it('the docs example: row i sums c_{j−i} over j', async () => {
    const y = toeplitzMatmul(tf.tensor1d([0, 0, 1, 2, 3]), tf.ones([3, 1]));
    expect(Array.from(await y.data())).toEqual([6, 3, 1]);
    y.dispose();
  });

  it.each(methods)(
    '%s equals the dense Float64 product (L = 1, 2, 7, 33, 100; odd and even n)',
    async (method) => {
      for (const [L, n] of [
        [1, 1],
        [2, 3],
        [7, 4],
        [33, 5],
        [100, 2],
      ] as const) {
        const c = randomArray([2 * L - 1], 1 + L);
        const x = randomArray([L, n], 2 + L);
        const y = toeplitzMatmul(tf.tensor1d(c), tf.tensor2d(x, [L, n]), { method });
        const ref = naive(c, x, L, n);
        const scale = Math.max(...ref.map(Math.abs));
        expect(maxAbsDiff(await y.data(), ref)).toBeLessThan(2e-6 * scale * Math.sqrt(L) + 1e-7);
        y.dispose();
      }
    },
  );

  it('broadcasts c [H, 2L−1] over x [B, H, L, n], and both methods agree', async () => {
    const [B, H, L, n] = [2, 3, 20, 6];
    const c = tf.tensor2d(randomArray([H, 2 * L - 1], 3), [H, 2 * L - 1]);
    const x = tf.tensor4d(randomArray([B, H, L, n], 4), [B, H, L, n]);
    const a = toeplitzMatmul(c, x, { method: 'fft' });
    const b = toeplitzMatmul(c, x, { method: 'toeplitz' });
    expect(a.shape).toEqual([B, H, L, n]);
    const [ad, bd, xd, cd] = await Promise.all([a.data(), b.data(), x.data(), c.data()]);
    expect(maxAbsDiff(ad, bd)).toBeLessThan(1e-5);
    // batch 1, head 2 against the Float64 reference
    const W = 2 * L - 1;
    const ref = naive(
      cd.slice(2 * W, 3 * W),
      xd.slice((1 * H + 2) * L * n, (1 * H + 3) * L * n),
      L,
      n,
    );
    const got = Array.from(ad).slice((1 * H + 2) * L * n, (1 * H + 3) * L * n);
    expect(maxAbsDiff(got, ref)).toBeLessThan(1e-5);
    tf.dispose([a, b, c, x]);
  });

  it('toeplitzMatrix builds C_ij = c[j − i + L − 1]', async () => {
    const L = 4;
    const c = tf.tensor2d([[10, 11, 12, 13, 14, 15, 16]]);
    const m = toeplitzMatrix(c, L);
    const rows = (await m.array())[0]!;
    for (let i = 0; i < L; i++)
      for (let j = 0; j < L; j++) expect(rows[i]![j]).toBe(10 + j - i + L - 1);
    tf.dispose([c, m]);
  });

  it.each(methods)('%s: gradients for c and x match central finite differences', async (method) => {
    const [L, n] = [9, 3];
    const c0 = randomArray([2, 2 * L - 1], 5);
    const x0 = randomArray([2, L, n], 6);
    const w = tf.tensor3d(randomArray([2, L, n], 7), [2, L, n]);
    const loss = (c: tf.Tensor, x: tf.Tensor) =>
      tf.sum(tf.mul(toeplitzMatmul(c, x, { method }), w)) as tf.Scalar;
    const c = tf.tensor2d(c0, [2, 2 * L - 1]);
    const x = tf.tensor3d(x0, [2, L, n]);
    const [gc, gx] = tf.grads(loss)([c, x]);
    const [gcd, gxd] = [await gc!.data(), await gx!.data()];
    // the loss is linear in each argument, so central differences are exact up to rounding
    const h = 1e-2;
    const fd = (which: 0 | 1, index: number) =>
      tf.tidy(() => {
        const base = which === 0 ? c : x;
        const e = tf.reshape(tf.oneHot(index, base.size), base.shape);
        const plus =
          which === 0 ? loss(tf.add(c, tf.mul(e, h)), x) : loss(c, tf.add(x, tf.mul(e, h)));
        const minus =
          which === 0 ? loss(tf.sub(c, tf.mul(e, h)), x) : loss(c, tf.sub(x, tf.mul(e, h)));
        return (plus.dataSync()[0]! - minus.dataSync()[0]!) / (2 * h);
      });
    for (const i of [0, 3, 8, 16, 20, 33]) expect(gcd[i]).toBeCloseTo(fd(0, i), 2);
    for (const i of [0, 5, 26, 40, 53]) expect(gxd[i]).toBeCloseTo(fd(1, i), 2);
    tf.dispose([c, x, w, gc!, gx!]);
  });

  it('gradients reduce over broadcast dimensions (c [H, 2L−1] used by every batch)', () => {
    const [B, H, L, n] = [3, 2, 5, 2];
    const c = tf.randomNormal([H, 2 * L - 1], 0, 1, 'float32', 1);
    const x = tf.randomNormal([B, H, L, n], 0, 1, 'float32', 2);
    for (const method of methods) {
      const g = tf.grad((cc: tf.Tensor) => tf.sum(toeplitzMatmul(cc, x, { method })))(c);
      expect(g.shape).toEqual([H, 2 * L - 1]);
      g.dispose();
    }
    tf.dispose([c, x]);
  });

  it('frees its intermediates (forward and gradient)', () => {
    const c = tf.randomNormal([2, 15], 0, 1, 'float32', 1);
    const x = tf.randomNormal([2, 8, 3], 0, 1, 'float32', 2);
    for (const method of methods) {
      expectNoLeak(() => toeplitzMatmul(c, x, { method })).dispose();
      const before = tf.memory().numTensors;
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(toeplitzMatmul(a, b, { method })),
      )([c, x]);
      expect(tf.memory().numTensors).toBe(before + 2);
      tf.dispose(grads);
    }
    tf.dispose([c, x]);
  });

  it('rejects bad input, naming the argument, the shape and what was expected', () => {
    const x = tf.zeros([4, 2]);
    expect(() => toeplitzMatmul(tf.zeros([6]), x)).toThrow(
      /c must have last dimension 2L − 1 = 7 for x of length L = 4, got c \[6\]/,
    );
    expect(() => toeplitzMatmul(tf.zeros([2, 7]), tf.zeros([3, 4, 2]))).toThrow(
      /leading dimensions of c and x must broadcast/,
    );
    expect(() => toeplitzMatmul(tf.zeros([7]), tf.zeros([4]))).toThrow(/x/);
    expect(() => toeplitzMatmul(tf.zeros([7]), x, { method: 'dft' as ToeplitzMethod })).toThrow(
      /method must be 'fft' or 'toeplitz', got "dft"/,
    );
    expect(() => toeplitzMatmul(tf.zeros([7], 'int32'), x)).toThrow(/c/);
    tf.dispose(x);
  });
});
