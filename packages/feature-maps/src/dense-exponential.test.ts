import {
  createRng,
  gaussianIid,
  gaussianOrthogonal,
  type Matrix,
} from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  type AttentionStatistics,
  type DenseExponentialFit,
  denseExponentialSoftmax,
  fitDenseExponential,
  fittedParameters,
  oprfLogSecondMoment,
  oprfOptimalA,
  oprfRelativeVariance,
  oprfRho,
  optimizedPositiveSoftmax,
} from './dense-exponential.js';

type Vec = number[];
const dotv = (a: Vec, b: Vec) => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** Statistics of x̂ rows X and ŷ rows Y in Float64. */
function stats(X: Vec[], Y: Vec[]): AttentionStatistics {
  const d = X[0]!.length;
  const outer = (R: Vec[]) => {
    const m = new Float64Array(d * d);
    for (const r of R)
      for (let i = 0; i < d; i++)
        for (let j = 0; j < d; j++) m[i * d + j]! += (r[i]! * r[j]!) / R.length;
    return m;
  };
  const mean = (R: Vec[]) =>
    Float64Array.from({ length: d }, (_, l) => R.reduce((s, r) => s + r[l]!, 0) / R.length);
  return { d, m1: outer(X), m2: outer(Y), xbar: mean(X), ybar: mean(Y) };
}

/** The fitted feature f(ω, z) in Float64 without stabilizers (so E[f(ω,x) f(ω,y)] = exp(x·y)). */
function naiveFeature(fit: DenseExponentialFit, w: Vec, z: Vec, role: 'query' | 'key'): number {
  const d = z.length;
  let zt = z;
  if (fit.psi) zt = z.map((x, l) => (role === 'query' ? x * fit.psi![l]! : x / fit.psi![l]!));
  if (fit.psi1) {
    const P = role === 'query' ? fit.psi1 : fit.psi2!;
    zt = Array.from({ length: d }, (_, i) => z.reduce((s, x, l) => s + P[i * d + l]! * x, 0));
  }
  const zz = dotv(zt, zt);
  if (fit.a) {
    // SDERF in the eigenbasis: ωᵀAω = Σ a_l (Qᵀω)_l², ωᵀBz = Σ √(1−4a_l)(Qᵀω)_l (Qᵀz)_l
    const Q = fit.q!;
    let e = -zz / 2;
    for (let l = 0; l < d; l++) {
      let wl = 0;
      let zl = 0;
      for (let i = 0; i < d; i++) {
        wl += Q[i * d + l]! * w[i]!;
        zl += Q[i * d + l]! * zt[i]!;
      }
      const al = fit.a[l]!;
      e += al * wl * wl + Math.sqrt(1 - 4 * al) * wl * zl + Math.log(1 - 4 * al) / 4;
    }
    return Math.exp(e);
  }
  const A = fit.A!;
  return Math.exp(
    (d / 4) * Math.log(1 - 4 * A) + A * dotv(w, w) + Math.sqrt(1 - 4 * A) * dotv(w, zt) - zz / 2,
  );
}

/** Anisotropic data: dimension l scaled by 1.6^{−l}, query mean shifted, keys correlated. */
function anisotropic(n: number, d: number, seed: number, sigma = 0.5): { X: Vec[]; Y: Vec[] } {
  const rng = createRng(seed);
  const row = (shift: number) =>
    Array.from(
      { length: d },
      (_, l) => (sigma * 1.6 ** (d / 2 - l) * rng.normal() + shift) * d ** -0.25,
    );
  const X = Array.from({ length: n }, () => row(0.3));
  const Y = Array.from({ length: n }, () => {
    const r = row(-0.1);
    return r.map((x, l) => x + 0.5 * r[(l + 1) % d]!);
  });
  return { X, Y };
}

describe('OPRF closed forms', () => {
  it('golden values: d = 64, |x + y|² = 100 gives ρ ≈ 0.2092526, A ≈ −0.4723643, log ratio ≈ 61.22', () => {
    expect(oprfRho(100, 64)).toBeCloseTo(0.2092526, 6);
    expect(oprfOptimalA(100, 64)).toBeCloseTo(-0.4723643, 6);
    const favor = oprfLogSecondMoment(0, 64, 100);
    const oprf = oprfLogSecondMoment(oprfOptimalA(100, 64), 64, 100);
    expect(favor - oprf).toBeCloseTo(61.22, 2);
    expect(oprfOptimalA(0, 64)).toBe(0); // no data, FAVOR+
  });

  it('the closed-form A is the numerical minimiser of the objective', () => {
    for (const [phi, d] of [
      [100, 64],
      [3, 16],
      [0.5, 8],
      [40, 1],
      [1e-3, 32],
    ] as const) {
      // golden-section search on A ∈ (−20, 1/8)
      let [lo, hi] = [-20, 0.125 - 1e-9];
      const f = (A: number) => oprfLogSecondMoment(A, d, phi);
      for (let it = 0; it < 200; it++) {
        const m1 = hi - (hi - lo) / 1.618033988749895;
        const m2 = lo + (hi - lo) / 1.618033988749895;
        if (f(m1) < f(m2)) hi = m2;
        else lo = m1;
      }
      const numeric = (lo + hi) / 2;
      expect(Math.abs(oprfOptimalA(phi, d) - numeric)).toBeLessThan(1e-6 * (1 + Math.abs(numeric)));
      expect(f(oprfOptimalA(phi, d))).toBeLessThanOrEqual(f(numeric) + 1e-12);
    }
  });

  it('the closed-form variance matches Monte Carlo, and the estimator is unbiased', () => {
    const d = 4;
    const x = [0.3, -0.2, 0.5, 0.1];
    const y = [0.2, 0.4, -0.1, 0.3];
    const s = x.reduce((a, xi, i) => a + (xi + y[i]!) ** 2, 0);
    const K = Math.exp(dotv(x, y));
    const rng = createRng(5);
    for (const A of [0, -0.2, 0.05, oprfOptimalA(s, d)]) {
      const fit = { variant: 'oprf' as const, A, objective: 0 };
      const n = 400000;
      let sum = 0;
      let sum2 = 0;
      for (let t = 0; t < n; t++) {
        const w = Array.from({ length: d }, () => rng.normal());
        const v = naiveFeature(fit, w, x, 'query') * naiveFeature(fit, w, y, 'key');
        sum += v;
        sum2 += v * v;
      }
      const mean = sum / n;
      const variance = sum2 / n - mean * mean;
      expect(Math.abs(mean - K)).toBeLessThan(4 * Math.sqrt(variance / n)); // unbiased
      const want = oprfRelativeVariance(A, d, s) * K * K;
      expect(Math.abs(variance / want - 1)).toBeLessThan(0.05);
    }
  });
});

describe('dense-exponential fits', () => {
  it('the fitted objective is ordered: ADERF ≤ SADERF ≤ OPRF ≤ FAVOR+, SDERF ≤ OPRF (anisotropic data)', () => {
    for (const [d, seed] of [
      [8, 1],
      [16, 2],
      [64, 3],
    ] as const) {
      const { X, Y } = anisotropic(300, d, seed);
      const st = stats(X, Y);
      const obj = (v: Parameters<typeof fitDenseExponential>[0]) =>
        fitDenseExponential(v, st).objective;
      const [favor, oprf, saderf, aderf, sderf] = (
        ['favor+', 'oprf', 'saderf', 'aderf', 'sderf'] as const
      ).map(obj);
      const tol = 1e-9 * (1 + Math.abs(favor!));
      expect(aderf!).toBeLessThanOrEqual(saderf! + tol);
      expect(saderf!).toBeLessThanOrEqual(oprf! + tol);
      expect(oprf!).toBeLessThanOrEqual(favor! + tol);
      expect(sderf!).toBeLessThanOrEqual(oprf! + tol);
      expect(aderf!).toBeLessThan(oprf! - 1e-3); // anisotropy really helps here
    }
  });

  it('ADERF’s transform keeps x·y (Ψ1ᵀΨ2 = I)', () => {
    const d = 6;
    const { X, Y } = anisotropic(100, d, 9);
    const fit = fitDenseExponential('aderf', stats(X, Y));
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let l = 0; l < d; l++) s += fit.psi1![l * d + i]! * fit.psi2![l * d + j]!;
        expect(s).toBeCloseTo(i === j ? 1 : 0, 8);
      }
    }
  });

  it.each(['oprf', 'saderf', 'aderf', 'sderf'] as const)(
    '%s: unbiased by Monte Carlo over ω (fitted on anisotropic data), within 4 standard errors',
    (variant) => {
      const d = 4;
      const { X, Y } = anisotropic(200, d, 4, 0.8);
      const fit = fitDenseExponential(variant, stats(X, Y));
      const rng = createRng(17);
      const pairs = [
        [0, 0],
        [3, 7],
        [11, 2],
      ] as const;
      for (const [i, j] of pairs) {
        const [x, y] = [X[i]!, Y[j]!];
        const n = 200000;
        let sum = 0;
        let sum2 = 0;
        for (let t = 0; t < n; t++) {
          const w = Array.from({ length: d }, () => rng.normal());
          const v = naiveFeature(fit, w, x, 'query') * naiveFeature(fit, w, y, 'key');
          sum += v;
          sum2 += v * v;
        }
        const mean = sum / n;
        const se = Math.sqrt((sum2 / n - mean * mean) / n);
        expect(Math.abs(mean - Math.exp(dotv(x, y)))).toBeLessThan(4 * se);
      }
    },
  );
});

describe('optimizedPositiveSoftmax / denseExponentialSoftmax as feature maps', () => {
  const d = 8;
  const m = 32;
  const w: Matrix = gaussianOrthogonal(m, d, { seed: 2 });
  const wRows = Array.from({ length: m }, (_, r) =>
    Array.from(w.data.subarray(r * d, (r + 1) * d)),
  );
  it.each(['oprf', 'saderf', 'aderf', 'sderf'] as const)(
    '%s: prepared tensor features equal the Float64 features up to the stabilizers',
    async (variant) => {
      const G = 2;
      const L = 12;
      const raw = (seed: number) => {
        const { X, Y } = anisotropic(G * L, d, seed);
        const back = (R: Vec[]) => R.map((r) => r.map((x) => x * d ** 0.25)); // undo the d^-1/4
        return { q: back(X), k: back(Y) };
      };
      const { q, k } = raw(21);
      const qt = tf.tensor3d(q.flat(), [G, L, d]);
      const kt = tf.tensor3d(k.flat(), [G, L, d]);
      const map =
        variant === 'oprf'
          ? optimizedPositiveSoftmax({ projection: w })
          : denseExponentialSoftmax({ variant, projection: w });
      const prepared = map.prepare!(qt, kt, null);
      const fq = (await prepared.features(qt, 'query').array()) as number[][][];
      const fk = (await prepared.features(kt, 'key').array()) as number[][][];
      for (let g = 0; g < G; g++) {
        const scale = (x: Vec) => x.map((v) => v * d ** -0.25);
        const X = q.slice(g * L, (g + 1) * L).map(scale);
        const Y = k.slice(g * L, (g + 1) * L).map(scale);
        const fit = fitDenseExponential(variant, stats(X, Y));
        // the kernel estimates φ(q_i)·φ(k_j) agree up to one factor per query row and one per group
        const est = (i: number, j: number) =>
          fq[g]![i]!.reduce((s, x, r) => s + x * fk[g]![j]![r]!, 0);
        const ref = (i: number, j: number) =>
          wRows.reduce(
            (s, wr) =>
              s + naiveFeature(fit, wr, X[i]!, 'query') * naiveFeature(fit, wr, Y[j]!, 'key'),
            0,
          ) / m;
        for (let i = 0; i < L; i += 3) {
          const ratio0 = est(i, 0) / ref(i, 0);
          for (let j = 1; j < L; j += 2) expect(est(i, j) / ref(i, j) / ratio0).toBeCloseTo(1, 3);
        }
      }
      prepared.dispose();
      map.dispose?.();
      tf.dispose([qt, kt]);
    },
  );

  it('antithetic: 2m features, the same as the plain map on the rows [W₁; −W₁; W₂; −W₂]', async () => {
    const anti = denseExponentialSoftmax({ variant: 'aderf', projection: w, antithetic: true });
    expect(anti.numFeatures).toBe(2 * m);
    const h = m / 2;
    const rows = [
      ...wRows.slice(0, h),
      ...wRows.slice(0, h).map((r) => r.map((x) => -x)),
      ...wRows.slice(h),
      ...wRows.slice(h).map((r) => r.map((x) => -x)),
    ];
    const stacked = denseExponentialSoftmax({
      variant: 'aderf',
      projection: { rows: 2 * m, cols: d, data: Float64Array.from(rows.flat()) },
    });
    const q = tf.randomNormal([2, 10, d], 0, 1, 'float32', 3);
    const k = tf.randomNormal([2, 10, d], 0, 1, 'float32', 4);
    const [pa, ps] = [anti.prepare!(q, k, null), stacked.prepare!(q, k, null)];
    for (const role of ['query', 'key'] as const) {
      const x = role === 'query' ? q : k;
      const [a, b] = [await pa.features(x, role).data(), await ps.features(x, role).data()];
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 6);
    }
    tf.dispose([q, k]);
    for (const x of [pa, ps, anti, stacked]) x.dispose();
  });

  it.each([
    { variant: 'oprf' as const, antithetic: false },
    { variant: 'saderf' as const, antithetic: false },
    { variant: 'aderf' as const, antithetic: true },
    { variant: 'sderf' as const, antithetic: false },
  ])(
    'fittedParameters ($variant, antithetic $antithetic): the general form gives the fitted map’s features',
    async ({ variant, antithetic }) => {
      const G = 3;
      const map = denseExponentialSoftmax({ variant, projection: w, eps: 1e-3, antithetic });
      const q = tf.randomNormal([G, 10, d], 0, 1.5, 'float32', 5);
      const k = tf.randomNormal([G, 12, d], 0.3, 1, 'float32', 6);
      tf.dispose(map.features(q, 'query')); // uploads the projection once (kept by the map)
      const before = tf.memory().numTensors;
      for (const [fitted, label] of [
        [map.prepare!(q, k, null), 'fitted'],
        [map, 'unfitted'],
      ] as const) {
        const p = fittedParameters(fitted, label === 'unfitted' ? G : undefined);
        expect(p.groups).toBe(G);
        expect(p.projection.shape).toEqual([G, map.numFeatures, d]);
        expect(p.queryTransform.shape).toEqual([G, d, d]);
        expect(p.keyOffset.shape).toEqual([G, map.numFeatures]);
        // φ(z) ∝ exp(a − max) + eps, a = (c·z')·Pᵀ − ½c²|z'|² + o, z' = z·Tᵀ
        const general = (x: tf.Tensor, t: tf.Tensor, o: tf.Tensor, role: 'query' | 'key') =>
          tf.tidy(() => {
            const z = tf.mul(tf.matMul(x, t, false, true), p.normalizer);
            const a = tf.add(
              tf.sub(
                tf.matMul(z, p.projection, false, true),
                tf.mul(tf.sum(tf.square(z), -1, true), 0.5),
              ),
              tf.expandDims(o, 1),
            );
            const s = role === 'query' ? tf.max(a, -1, true) : tf.max(a, [1, 2], true);
            return tf.mul(tf.add(tf.exp(tf.sub(a, s)), p.eps), 1 / Math.sqrt(map.numFeatures));
          });
        for (const [x, t, o, role] of [
          [q, p.queryTransform, p.queryOffset, 'query'],
          [k, p.keyTransform, p.keyOffset, 'key'],
        ] as const) {
          const [mineT, theirsT] = [general(x, t, o, role), fitted.features(x, role)];
          const [mine, theirs] = [await mineT.data(), await theirsT.data()];
          tf.dispose([mineT, theirsT]);
          for (let i = 0; i < mine.length; i += 7) {
            expect(mine[i]! / theirs[i]!, `${label} ${role} ${i}`).toBeCloseTo(1, 4);
          }
        }
        tf.dispose([p.projection, p.queryTransform, p.keyTransform, p.queryOffset, p.keyOffset]);
        if (label === 'fitted') fitted.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(() => fittedParameters(map)).toThrow(
        /has not been fitted; pass the map that prepare\(q, k, keep\) returned, or the number of groups/,
      );
      expect(() => fittedParameters({ name: 'mine' } as never)).toThrow(
        /map must be a fitted optimizedPositiveSoftmax or denseExponentialSoftmax map .*got mine/,
      );
      map.dispose();
      tf.dispose([q, k]);
    },
  );

  it('rejects bad options', () => {
    expect(() => denseExponentialSoftmax({ variant: 'derf' as 'oprf', projection: w })).toThrow(
      /variant must be one of oprf, saderf, aderf, sderf, got "derf"/,
    );
    expect(() =>
      optimizedPositiveSoftmax({ projection: tf.zeros([4, 4]) as unknown as Matrix }),
    ).toThrow(/projection must be a Float64 Matrix/);
    expect(() =>
      optimizedPositiveSoftmax({ projection: gaussianIid(4, 4, { seed: 1 }), eps: -1 }),
    ).toThrow(/eps must be a finite number >= 0, got -1/);
  });
});
