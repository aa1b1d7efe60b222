// favorAttention (and rpe / gated) with data-dependent feature maps: the FeatureMap.prepare hook.
import {
  denseExponentialSoftmax,
  optimizedPositiveSoftmax,
  positiveSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type Array4, maxRelativeError, rand4 } from '../testing/suites.js';
import { favorAttention } from './favor/favor-attention.js';
import { linearAttention } from './linear-attention.js';
import { softmaxAttention } from './softmax-attention.js';

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const [B, H, L, d, m] = [2, 2, 40, 8, 32];
const w = gaussianOrthogonal(m, d, { seed: 4 });
const maps = {
  oprf: () => optimizedPositiveSoftmax({ projection: w }),
  saderf: () => denseExponentialSoftmax({ variant: 'saderf', projection: w }),
  aderf: () => denseExponentialSoftmax({ variant: 'aderf', projection: w }),
  sderf: () => denseExponentialSoftmax({ variant: 'sderf', projection: w }),
};
const variants = Object.keys(maps) as (keyof typeof maps)[];
const inputs = () => ({
  q: rand4([B, H, L, d], 1, 0.8),
  k: rand4([B, H, L, d], 2, 0.8),
  v: rand4([B, H, L, 3], 3),
});
const flat = (x: tf.Tensor) => tf.reshape(x, [B * H, x.shape[2]!, x.shape[3]!]);
const four = (x: tf.Tensor) => tf.reshape(x, [B, H, x.shape[1]!, x.shape[2]!]);

describe('favorAttention with FeatureMap.prepare', () => {
  it.each(variants)(
    '%s bidirectional: the map fitted to the call (padded keys left out) is used',
    async (variant) => {
      const { q, k, v } = inputs();
      const mask = tf.tensor2d([Array(L).fill(1), [...Array(L - 7).fill(1), ...Array(7).fill(0)]]);
      const phi = maps[variant]();
      const out = favorAttention(q, k, v, { featureMap: phi, mask });
      // by hand: prepare on all (batch, head) groups with the keep mask, then linear attention
      const keep = tf.reshape(tf.broadcastTo(tf.reshape(mask, [B, 1, L, 1]), [B, H, L, 1]), [
        B * H,
        L,
        1,
      ]);
      const kz = tf.mul(flat(k), keep);
      const fitted = phi.prepare!(flat(q), kz, keep);
      const ref = linearAttention(
        four(fitted.features(flat(q), 'query')),
        four(fitted.features(kz, 'key')),
        v,
        { mask },
      );
      expect(maxRelativeError(await arr(out), await arr(ref))).toBeLessThan(2e-5);
      // what the padded keys hold changes nothing (they are left out of the fit too)
      const k2 = tf.where(tf.cast(tf.reshape(mask, [B, 1, L, 1]), 'bool'), k, tf.mul(k, 50));
      const out2 = favorAttention(q, k2, v, { featureMap: phi, mask });
      expect(maxRelativeError(await arr(out2), await arr(out))).toBeLessThan(2e-5);
      fitted.dispose();
      phi.dispose?.();
      tf.dispose([q, k, v, mask, out, out2, keep, kz, ref, k2]);
    },
  );

  it.each(variants)(
    '%s causal: fitted on the first causalFitLength positions, no output depends on a later one',
    async (variant) => {
      const { q, k, v } = inputs();
      const phi = maps[variant]();
      const P = 16;
      const out = await arr(
        favorAttention(q, k, v, { featureMap: phi, causal: true, causalFitLength: P }),
      );
      for (const t of [5, P, P + 7]) {
        const later = (x: tf.Tensor, seed: number) => {
          const noise = rand4(x.shape as [number, number, number, number], seed, 2);
          const pos = tf.reshape(tf.greaterEqual(tf.range(0, L), t), [1, 1, L, 1]);
          return tf.where(tf.broadcastTo(pos, x.shape), noise, x);
        };
        const changed = await arr(
          favorAttention(later(q, 10), later(k, 11), later(v, 12), {
            featureMap: phi,
            causal: true,
            causalFitLength: P,
          }),
        );
        const early = (x: Array4) => x.map((b) => b.map((h) => h.slice(0, t)));
        expect(maxRelativeError(early(changed), early(out))).toBeLessThan(1e-5);
        expect(maxRelativeError(changed, out)).toBeGreaterThan(1e-3);
      }
      // rows from P on use the map fitted on the prefix; rows before P the unfitted map
      const head = (x: tf.Tensor) => tf.slice(flat(x), [0, 0, 0], [-1, P, -1]);
      const fitted = phi.prepare!(head(q), head(k), null);
      const late = linearAttention(
        four(fitted.features(flat(q), 'query')),
        four(fitted.features(flat(k), 'key')),
        v,
        {
          causal: true,
        },
      );
      const early = linearAttention(
        four(phi.features(head(q), 'query')),
        four(phi.features(head(k), 'key')),
        tf.slice(v, [0, 0, 0, 0], [-1, -1, P, -1]),
        {
          causal: true,
        },
      );
      const lateRows = (await arr(late)).map((b) => b.map((h) => h.slice(P)));
      expect(
        maxRelativeError(
          out.map((b) => b.map((h) => h.slice(P))),
          lateRows,
        ),
      ).toBeLessThan(2e-5);
      expect(
        maxRelativeError(
          out.map((b) => b.map((h) => h.slice(0, P))),
          await arr(early),
        ),
      ).toBeLessThan(2e-5);
      fitted.dispose();
      phi.dispose?.();
      tf.dispose([q, k, v, late, early]);
    },
  );

  it('no gradient flows through the statistics: the gradient equals that of the frozen fitted map', async () => {
    const { q, k, v } = inputs();
    const phi = maps.oprf();
    const r = rand4([B, H, L, 3], 9);
    const fitted = phi.prepare!(flat(q), flat(k), null);
    const frozen = {
      name: 'frozen',
      numFeatures: m,
      features: (x: tf.Tensor, role: 'query' | 'key') => fitted.features(x, role),
    };
    const loss = (map: typeof phi | typeof frozen) => (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(favorAttention(a, b, v, { featureMap: map }), r));
    const [ga, gb] = tf.grads(loss(phi))([q, k]);
    const [fa, fb] = tf.grads(loss(frozen))([q, k]);
    expect(maxRelativeError(await arr(ga!), await arr(fa!))).toBeLessThan(1e-4);
    expect(maxRelativeError(await arr(gb!), await arr(fb!))).toBeLessThan(1e-4);
    expect((await ga!.data()).every(Number.isFinite)).toBe(true);
    fitted.dispose();
    phi.dispose?.();
  });

  it('at d = 64, σ = 0.5 the fitted maps are more accurate than FAVOR+ on average (6 seeds)', async () => {
    const Lx = 256;
    const errors: Record<string, number> = {};
    for (const [name, make] of Object.entries({
      positive: (s: number) =>
        positiveSoftmax({ projection: gaussianOrthogonal(128, 64, { seed: s }), eps: 0 }),
      oprf: (s: number) =>
        optimizedPositiveSoftmax({ projection: gaussianOrthogonal(128, 64, { seed: s }) }),
      sderf: (s: number) =>
        denseExponentialSoftmax({
          variant: 'sderf',
          projection: gaussianOrthogonal(128, 64, { seed: s }),
        }),
    })) {
      let total = 0;
      for (let seed = 0; seed < 6; seed++) {
        const q = rand4([1, 1, Lx, 64], 100 + seed, 0.5);
        const k = rand4([1, 1, Lx, 64], 200 + seed, 0.5);
        const v = rand4([1, 1, Lx, 64], 300 + seed);
        const phi = make(seed);
        const err = tf.tidy(() => {
          const a = favorAttention(q, k, v, { featureMap: phi });
          const e = softmaxAttention(q, k, v);
          return tf.div(tf.norm(tf.sub(a, e)), tf.norm(e));
        });
        total += (await err.data())[0]! / 6;
        tf.dispose([q, k, v, err]);
        phi.dispose?.();
      }
      errors[name] = total;
    }
    expect(errors.oprf!).toBeLessThan(errors.positive!);
    expect(errors.sderf!).toBeLessThan(errors.positive!);
  });
});

describe('favorAttention shrinkage (variance-aware, toward mean(v))', () => {
  const errorOf = async (shrinkage: boolean, seed: number) => {
    const Lx = 256;
    const q = rand4([1, 2, Lx, 64], 400 + seed, 0.5);
    const k = rand4([1, 2, Lx, 64], 500 + seed, 0.5);
    const v = rand4([1, 2, Lx, 16], 600 + seed);
    const phi = positiveSoftmax({ projection: gaussianOrthogonal(64, 64, { seed }), eps: 1e-4 });
    const err = tf.tidy(() => {
      const a = favorAttention(q, k, v, { featureMap: phi, shrinkage });
      const e = softmaxAttention(q, k, v);
      return tf.div(tf.norm(tf.sub(a, e)), tf.norm(e));
    });
    const x = (await err.data())[0]!;
    tf.dispose([q, k, v, err]);
    phi.dispose();
    return x;
  };

  it('lowers the error where attention is near uniform and features are few (5 seeds)', async () => {
    let [plain, shrunk] = [0, 0];
    for (let s = 0; s < 5; s++) {
      plain += await errorOf(false, s);
      shrunk += await errorOf(true, s);
    }
    expect(shrunk).toBeLessThan(0.8 * plain);
  });

  it('gives a convex combination of the estimate and the masked mean of v; padded values change nothing', async () => {
    const { q, k, v } = inputs();
    const mask = tf.tensor2d([Array(L).fill(1), [...Array(L - 6).fill(1), ...Array(6).fill(0)]]);
    const phi = positiveSoftmax({ projection: w });
    const plain = await arr(favorAttention(q, k, v, { featureMap: phi, mask }));
    const shrunk = await arr(favorAttention(q, k, v, { featureMap: phi, mask, shrinkage: true }));
    const vm = await arr(v);
    const maskRows = (await mask.array()) as number[][];
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kept = vm[b]![h]!.filter((_, j) => maskRows[b]![j] !== 0);
        const mean = kept[0]!.map((_, t) => kept.reduce((s, r) => s + r[t]!, 0) / kept.length);
        // one λ per (batch, head): shrunk = λ·plain + (1 − λ)·mean on every entry
        const i0 = 0;
        const t0 = 0;
        const lambda =
          (shrunk[b]![h]![i0]![t0]! - mean[t0]!) / (plain[b]![h]![i0]![t0]! - mean[t0]!);
        expect(lambda).toBeGreaterThanOrEqual(-1e-6);
        expect(lambda).toBeLessThanOrEqual(1 + 1e-6);
        for (let i = 0; i < L; i += 7) {
          for (let t = 0; t < 3; t++) {
            const want = lambda * plain[b]![h]![i]![t]! + (1 - lambda) * mean[t]!;
            expect(shrunk[b]![h]![i]![t]!).toBeCloseTo(want, 4);
          }
        }
      }
    }
    const v2 = tf.where(tf.cast(tf.reshape(mask, [B, 1, L, 1]), 'bool'), v, tf.mul(v, 100));
    const again = await arr(favorAttention(q, k, v2, { featureMap: phi, mask, shrinkage: true }));
    expect(maxRelativeError(again, shrunk)).toBeLessThan(1e-5);
    expect(() =>
      favorAttention(q, k, v, { featureMap: phi, causal: true, shrinkage: true }),
    ).toThrow(/shrinkage is for bidirectional attention, got causal: true/);
    phi.dispose();
    tf.dispose([q, k, v, mask, v2]);
  });
});
