import { createRng } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { softmaxAttention } from '../ops/softmax-attention.js';
import {
  type Array4,
  expectGradientsMatchFiniteDifferences,
  maxRelativeError,
  rand4,
  randomArray,
} from '../testing/suites.js';
import { bayesianAttention, klWeibullGamma, weibullLogSamples } from './bayesian-attention.js';
import { lgamma, lgammaNumber } from './lgamma.js';

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const [B, H, L, d, dv] = [2, 2, 15, 6, 3];
const inputs = () => ({
  q: rand4([B, H, L, d], 1, 0.8),
  k: rand4([B, H, L, d], 2, 0.8),
  v: rand4([B, H, L, dv], 3),
});
const maskRows = [Array(L).fill(1), [...Array(L - 4).fill(1), ...Array(4).fill(0)]];

/** Python's math.lgamma (float64) at these points. */
const LGAMMA: [number, number][] = [
  [1e-3, 6.907178885383854],
  [0.1, 2.2527126517342055],
  [0.5, 0.5723649429247004],
  [1, 0],
  [1.5, -0.12078223763524543],
  [2, 0],
  [3.7, 1.4280723266653883],
  [6.99, 6.560531049842762],
  [7, 6.579251212010102],
  [10, 12.801827480081467],
  [100, 359.1342053695754],
  [1e4, 82099.71749644238],
  [1e6, 12815504.569147611],
];

/** KL(Weibull(k, λ) ‖ Gamma(α, β)) by Monte Carlo in float64: mean of ln q(W) − ln p(W), W ~ q. */
function monteCarloKl(k: number, lambda: number, alpha: number, beta: number, n: number) {
  const rng = createRng(77);
  let sum = 0;
  let sum2 = 0;
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    const w = lambda * (-Math.log1p(-u)) ** (1 / k);
    const logQ = Math.log(k / lambda) + (k - 1) * Math.log(w / lambda) - (w / lambda) ** k;
    const logP =
      alpha * Math.log(beta) - lgammaNumber(alpha) + (alpha - 1) * Math.log(w) - beta * w;
    sum += logQ - logP;
    sum2 += (logQ - logP) ** 2;
  }
  const mean = sum / n;
  return { mean, se: Math.sqrt((sum2 / n - mean * mean) / n) };
}

describe('lgamma', () => {
  it('matches float64 ln Γ from 1e-3 to 1e6 (float32 tensor and float64 number forms)', async () => {
    const x = tf.tensor1d(LGAMMA.map(([a]) => a));
    const got = await lgamma(x).data();
    LGAMMA.forEach(([a, want], i) => {
      expect(Math.abs(lgammaNumber(a) - want)).toBeLessThan(1e-12 * (1 + Math.abs(want)));
      expect(Math.abs(got[i]! - want)).toBeLessThan(2e-6 * (1 + Math.abs(want)));
    });
    expect(Number.isNaN((await lgamma(tf.tensor1d([-1, 0])).data())[0])).toBe(true);
    x.dispose();
  });

  it('its gradient is the digamma function (ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ(10))', async () => {
    const g = await tf
      .grad((x: tf.Tensor) => tf.sum(lgamma(x)))(tf.tensor1d([1, 0.5, 10]))
      .data();
    const gamma = 0.5772156649015329;
    expect(g[0]).toBeCloseTo(-gamma, 4);
    expect(g[1]).toBeCloseTo(-gamma - 2 * Math.log(2), 4);
    expect(g[2]).toBeCloseTo(2.251752589066721, 4);
  });
});

describe('bayesianAttention', () => {
  it.each([false, true])(
    'inference (training: false) equals deterministic softmax attention (causal=%s, padding)',
    async (causal) => {
      const { q, k, v } = inputs();
      const mask = tf.tensor2d(maskRows);
      const before = tf.memory().numTensors;
      const { output, kl } = bayesianAttention(q, k, v, { training: false, causal, mask });
      expect(tf.memory().numTensors).toBe(before + 2);
      const ref = softmaxAttention(q, k, v, { causal, mask });
      expect(maxRelativeError(await arr(output), await arr(ref))).toBeLessThan(2e-5);
      expect(Number.isFinite((await kl.data())[0]!)).toBe(true);
      tf.dispose([q, k, v, mask, output, kl, ref]);
    },
  );

  it('Weibull samples: Monte Carlo mean exp(logMean) and the Weibull variance', async () => {
    const n = 40000;
    const logMean = tf.fill([n], Math.log(0.3));
    for (const k of [1, 3, 10]) {
      const w = Array.from(await tf.exp(weibullLogSamples(logMean, k, 5)).data());
      const mean = w.reduce((a, b) => a + b, 0) / n;
      const variance = w.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
      const lambda = 0.3 / Math.exp(lgammaNumber(1 + 1 / k));
      const wantVar =
        lambda ** 2 * (Math.exp(lgammaNumber(1 + 2 / k)) - Math.exp(2 * lgammaNumber(1 + 1 / k)));
      expect(Math.abs(mean - 0.3)).toBeLessThan(4 * Math.sqrt(wantVar / n));
      expect(Math.abs(variance / wantVar - 1)).toBeLessThan(0.1);
    }
    logMean.dispose();
  });

  it('the closed-form KL(Weibull ‖ Gamma) matches a Monte Carlo estimate', async () => {
    const cases = [
      { k: 2, lambda: 0.7, alpha: 1, beta: 1 },
      { k: 10, lambda: 0.2, alpha: 0.5, beta: 2 },
      { k: 1, lambda: 1.5, alpha: 3, beta: 0.5 },
      { k: 50, lambda: 1, alpha: 1.2, beta: 1 },
    ];
    for (const c of cases) {
      const closed = (
        await klWeibullGamma(tf.scalar(Math.log(c.lambda)), c.k, tf.scalar(c.alpha), c.beta).data()
      )[0]!;
      const mc = monteCarloKl(c.k, c.lambda, c.alpha, c.beta, 200000);
      expect(Math.abs(closed - mc.mean)).toBeLessThan(4 * mc.se + 1e-4 * (1 + Math.abs(mc.mean)));
    }
  });

  it('samples become deterministic as the Weibull shape grows', async () => {
    const { q, k, v } = inputs();
    const ref = await arr(softmaxAttention(q, k, v));
    const spread: number[] = [];
    for (const shape of [1, 10, 100, 10000]) {
      const outs: Array4[] = [];
      for (const seed of [1, 2, 3]) {
        const r = bayesianAttention(q, k, v, { training: true, shape, seed });
        outs.push(await arr(r.output));
        tf.dispose([r.output, r.kl]);
      }
      spread.push(Math.max(...outs.map((o) => maxRelativeError(o, ref))));
    }
    for (let i = 1; i < spread.length; i++) expect(spread[i]!).toBeLessThan(spread[i - 1]!);
    expect(spread[0]!).toBeGreaterThan(0.05); // k = 1 is really random
    expect(spread[3]!).toBeLessThan(1e-3);
    tf.dispose([q, k, v]);
  });

  it('a seed gives the same sample; training gradients match finite differences', async () => {
    const { q, k, v } = inputs();
    const a = bayesianAttention(q, k, v, { training: true, seed: 4 });
    const b = bayesianAttention(q, k, v, { training: true, seed: 4 });
    const c = bayesianAttention(q, k, v, { training: true, seed: 5 });
    expect(await a.output.data()).toEqual(await b.output.data());
    expect(await a.output.data()).not.toEqual(await c.output.data());
    tf.dispose([q, k, v, a.output, a.kl, b.output, b.kl, c.output, c.kl]);
    const q1 = rand4([1, 1, 5, 3], 11, 0.8);
    const k1 = rand4([1, 1, 5, 3], 12, 0.8);
    const v1 = rand4([1, 1, 5, 2], 13);
    const r = rand4([1, 1, 5, 2], 14);
    const prior = tf.tensor3d(randomArray([1, 1, 5], 15, 0.5), [1, 1, 5]);
    for (const causal of [false, true]) {
      const loss = (qq: tf.Tensor, kk: tf.Tensor, pp: tf.Tensor) => {
        const o = bayesianAttention(qq, kk, v1, {
          training: true,
          seed: 3,
          shape: 5,
          causal,
          priorLogits: pp,
        });
        return tf.add(tf.sum(tf.mul(o.output, r)), tf.mul(o.kl, 0.1));
      };
      await expectGradientsMatchFiniteDifferences(loss, [q1, k1, prior], (n) => [
        0,
        Math.floor(n / 2),
        n - 1,
      ]);
    }
    tf.dispose([q1, k1, v1, r, prior]);
  });

  it('large scores stay finite (the per-query scale keeps every λ representable)', async () => {
    const { q, k, v } = inputs();
    const big = tf.mul(q, 300);
    for (const training of [false, true]) {
      const { output, kl } = bayesianAttention(big, k, v, { training, seed: 1, causal: true });
      expect((await output.data()).every(Number.isFinite)).toBe(true);
      expect(Number.isFinite((await kl.data())[0]!)).toBe(true);
      tf.dispose([output, kl]);
    }
    tf.dispose([q, k, v, big]);
  });

  it('rejects bad options, naming them', () => {
    const { q, k, v } = inputs();
    const call = (o: object) => () =>
      bayesianAttention(q, k, v, { training: true, seed: 1, ...o } as never);
    expect(() => bayesianAttention(q, k, v, {} as never)).toThrow(
      /options \{ training: boolean \} are required/,
    );
    expect(call({ shape: 0 })).toThrow(
      /shape \(the Weibull shape k\) must be a finite number > 0, got 0/,
    );
    expect(call({ priorRate: -1 })).toThrow(/priorRate must be a finite number > 0, got -1/);
    expect(call({ seed: 0.5 })).toThrow(/seed must be an integer, got 0.5/);
    expect(call({ priorLogits: tf.zeros([B, H, L + 1]) })).toThrow(
      /priorLogits must have shape \[batch, heads, keyLength\] = \[2,2,15\], got \[2,2,16\]/,
    );
    expect(call({ mask: tf.ones([B, L + 1]) })).toThrow(/mask must have shape/);
    tf.dispose([q, k, v]);
  });
});
