import {
  createRng,
  gaussianIid,
  gaussianOrthogonal,
  type Matrix,
} from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { FeatureMap } from './feature-map.js';
import { hyperbolicSoftmax, positiveSoftmax } from './positive-softmax.js';
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
