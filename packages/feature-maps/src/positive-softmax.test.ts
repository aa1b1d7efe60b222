import {
  createRng,
  gaussianIid,
  gaussianOrthogonal,
  type Matrix,
} from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { FeatureMap } from './feature-map.js';
import { generalized } from './generalized.js';
import { hyperbolicSoftmax, positiveSoftmax } from './positive-softmax.js';
import { softmaxKernelFeatures } from './softmax-kernel-features.js';
import { trigSoftmax } from './trig-softmax.js';

type Sampler = 'iid' | 'orthogonal';
type Kind = 'positive' | 'hyperbolic' | 'trig';

function vec(seed: number, d: number, scale: number): Float64Array {
  const r = createRng(seed);
  return Float64Array.from({ length: d }, () => scale * r.normal());
}

function makeMap(kind: Kind, w: Matrix): FeatureMap {
  if (kind === 'positive') return positiveSoftmax({ projection: w, eps: 0, stabilize: false });
  if (kind === 'hyperbolic') return hyperbolicSoftmax({ projection: w, eps: 0, stabilize: false });
  return trigSoftmax({ projection: w, stabilize: false });
}

/**
 * R independent estimates of K(x_p, y_p) = φ(x_p)·φ(y_p) for every pair p, each with a fresh
 * projection (seed r), unstabilized so that the estimates are the textbook ones.
 */
function estimates(
  kind: Kind,
  sampler: Sampler,
  xs: Float64Array[],
  ys: Float64Array[],
  m: number,
  R: number,
): number[][] {
  const d = xs[0]!.length;
  const X = tf.tensor2d(
    xs.flatMap((v) => Array.from(v)),
    [xs.length, d],
  );
  const Y = tf.tensor2d(
    ys.flatMap((v) => Array.from(v)),
    [ys.length, d],
  );
  const out: number[][] = xs.map(() => []);
  for (let r = 0; r < R; r++) {
    const w =
      sampler === 'iid'
        ? gaussianIid(m, d, { seed: 1000 + r })
        : gaussianOrthogonal(m, d, { seed: 1000 + r });
    const phi = makeMap(kind, w) as FeatureMap & { dispose(): void };
    const k = tf.tidy(() => tf.sum(tf.mul(phi.features(X, 'query'), phi.features(Y, 'key')), -1));
    const vals = k.dataSync();
    k.dispose();
    phi.dispose();
    vals.forEach((v, p) => {
      out[p]!.push(v);
    });
  }
  X.dispose();
  Y.dispose();
  return out;
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const exactKernel = (x: Float64Array, y: Float64Array) => Math.exp(dot(x, y) / Math.sqrt(x.length));
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

describe('softmax-kernel random features: statistics', () => {
  const d = 16;
  const m = 32;
  // Moderate norms (|x̂+ŷ|² ≲ 1): the estimators' higher moments grow like exp(k·|x̂+ŷ|²), and
  // beyond this regime a few hundred draws cannot measure a variance reliably.
  const xs = [vec(1, d, 0.3), vec(2, d, 0.4), vec(3, d, 0.3)];
  const ys = [vec(4, d, 0.3), vec(5, d, 0.35), xs[2]!.map((v) => -v)];

  it.each([
    ['positive', 'iid'],
    ['positive', 'orthogonal'],
    ['hyperbolic', 'iid'],
    ['trig', 'iid'],
    ['trig', 'orthogonal'],
  ] as const)(
    '%s features (%s ω) are unbiased: mean of φ(x)·φ(y) → exp(x·y/√d)',
    (kind, sampler) => {
      const R = 400;
      const est = estimates(kind, sampler, xs, ys, m, R);
      est.forEach((e, p) => {
        const k = exactKernel(xs[p]!, ys[p]!);
        const mu = mean(e);
        // Bound: the mean of R independent estimates has standard error sd/√R; we use the sample
        // sd and allow 5 standard errors (false-failure probability < 1e-6 per pair), plus float32
        // rounding (for y = −x the positive estimator is exact: every draw gives exp(−|x̂|²)).
        const sd = Math.sqrt(e.reduce((s, v) => s + (v - mu) ** 2, 0) / (R - 1));
        expect(Math.abs(mu - k)).toBeLessThan((5 * sd) / Math.sqrt(R) + 1e-5 * k);
        if (kind === 'positive' && sampler === 'iid' && p < 2) {
          // Lemma 2 of the paper: Var = (exp(|x̂+ŷ|²) − 1)·K²/m for positive IID features.
          const s2 = xs[p]!.reduce((s, v, i) => s + (v + ys[p]![i]!) ** 2, 0) / Math.sqrt(d);
          const predicted = Math.sqrt(((Math.exp(s2) - 1) * k * k) / m);
          expect(sd / predicted).toBeGreaterThan(0.75); // sample sd of 400 draws is within ±25%
          expect(sd / predicted).toBeLessThan(1.25);
        }
      });
    },
  );

  it('orthogonal ω give lower MSE than IID ω on the same pairs', () => {
    // Relative MSE summed over 32 pairs (one tensor op per draw computes all pairs), so that the
    // comparison is not at the mercy of one pair's sampling noise.
    const R = 400;
    const px = Array.from({ length: 32 }, (_, i) => vec(100 + i, d, 0.35));
    const py = Array.from({ length: 32 }, (_, i) => vec(200 + i, d, 0.35));
    for (const kind of ['positive', 'trig'] as const) {
      const relMse = (sampler: Sampler) =>
        estimates(kind, sampler, px, py, d, R).reduce((sum, e, p) => {
          const k = exactKernel(px[p]!, py[p]!);
          return sum + mean(e.map((v) => ((v - k) / k) ** 2));
        }, 0);
      const iid = relMse('iid');
      const orth = relMse('orthogonal');
      expect(orth).toBeLessThan(0.9 * iid);
    }
  });

  it('positive features beat trigonometric ones where the kernel value is small (paper Fig. 4)', () => {
    // y = −x: exp(x·y/√d) = exp(−|x|²/√d) is small; the trig estimator's variance does not shrink
    // with the kernel value, the positive estimator's does (relative variance stays bounded).
    const R = 200;
    const x = vec(11, d, 1.0);
    const y = x.map((v) => -v);
    const k = exactKernel(x, y);
    expect(k).toBeLessThan(0.05);
    const mse = (e: number[]) => mean(e.map((v) => (v - k) ** 2));
    const pos = estimates('positive', 'orthogonal', [x], [y], m, R)[0]!;
    const trig = estimates('trig', 'orthogonal', [x], [y], m, R)[0]!;
    expect(mse(pos)).toBeLessThan(mse(trig) / 10);
    expect(Math.min(...pos)).toBeGreaterThanOrEqual(0);
    expect(Math.min(...trig)).toBeLessThan(0); // trig estimates go negative here
  });
});

describe('feature maps: shapes, stabilizers and extremes', () => {
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
});

describe('feature maps: bad input', () => {
  const w = gaussianOrthogonal(4, 8, { seed: 1 });
  it('names the argument and the shape it got', () => {
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
  it('a user fn returning the wrong shape is reported', () => {
    const g = generalized({ fn: (t) => tf.sum(t, -1), inputDim: 8 });
    expect(() => g.features(tf.zeros([3, 8]), 'query')).toThrow(
      /fn must return a tensor of its input's shape \[3,8\], got \[3\]/,
    );
  });
});
