import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { favorAttention } from '../ops/favor/favor-attention.js';
import { softmaxAttention } from '../ops/softmax-attention.js';
import {
  type Array4,
  expectGradientsMatchFiniteDifferences,
  expectNoLeak,
  maxRelativeError,
  naiveFavorAttention,
  naiveSoftmaxAttention,
  rand4,
  randomArray,
} from '../testing/suites.js';
import { gatedAttention, relaxedGates } from './gated-attention.js';

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const [B, H, L, d, dv] = [2, 2, 29, 8, 3];
const w = gaussianOrthogonal(32, d, { seed: 3 });
const phi = positiveSoftmax({ projection: w, eps: 1e-4 });
const inputs = () => ({
  q: rand4([B, H, L, d], 1, 0.6),
  k: rand4([B, H, L, d], 2, 0.6),
  v: rand4([B, H, L, dv], 3),
});
const maskRows = [Array(L).fill(1), [...Array(L - 5).fill(1), ...Array(5).fill(0)]];
/** keep-probabilities in (0, 1), about half above 1/2 */
const probs = (seed: number) =>
  tf.tensor2d(
    randomArray([B, L], seed).map((x) => 1 / (1 + Math.exp(-2 * x))),
    [B, L],
  );
const variants = [false, true].flatMap((causal) =>
  [false, true].map((favor) => ({ causal, favor })),
);
const extra = (favor: boolean) => (favor ? { featureMap: phi } : {});

/** Float64 oracle: weights g_j·exp(q·k/√d) (softmax) or g_j·φ(q)·φ(k) (features). */
function naiveGated(
  q: Array4,
  k: Array4,
  v: Array4,
  g: number[][],
  o: { causal: boolean; favor: boolean; mask?: number[][] },
): Array4 {
  if (o.favor) {
    // padded keys count nowhere, and the key stabilizer runs over the keys each query sees
    return naiveFavorAttention(q, k, v, w, {
      causal: o.causal,
      mask: o.mask,
      eps: 1e-4,
      keyWeights: g,
    });
  }
  // softmax with key weights: fold log g_j into an extra query/key coordinate scaled to √d'
  const d1 = d + 1;
  const c = Math.sqrt(d1) / Math.sqrt(d);
  const q1 = q.map((qb) =>
    qb.map((qh) => qh.map((row) => [...row.map((x) => x * c), Math.sqrt(d1)])),
  );
  const k1 = k.map((kb, b) =>
    kb.map((kh) => kh.map((row, j) => [...row, g[b]![j]! > 0 ? Math.log(g[b]![j]!) : -1e300])),
  );
  const mask = g.map((row, b) =>
    row.map((x, j) => (x > 0 && (!o.mask || o.mask[b]![j] !== 0) ? 1 : 0)),
  );
  return naiveSoftmaxAttention(q1, k1, v, { causal: o.causal, mask });
}

describe('gatedAttention', () => {
  it.each(variants)(
    'all-open gates (p = 1) give the base attention: %o',
    async ({ causal, favor }) => {
      const { q, k, v } = inputs();
      const mask = tf.tensor2d(maskRows);
      const gates = tf.ones([B, L]);
      const base = favor
        ? favorAttention(q, k, v, { featureMap: phi, causal, mask })
        : softmaxAttention(q, k, v, { causal, mask });
      for (const mode of ['hard', 'relaxed'] as const) {
        const out = expectNoLeak(() =>
          gatedAttention(q, k, v, { gates, mode, seed: 1, causal, mask, ...extra(favor) }),
        );
        expect(maxRelativeError(await arr(out), await arr(base))).toBeLessThan(2e-5);
        out.dispose();
      }
      tf.dispose([q, k, v, mask, gates, base]);
    },
  );

  it.each(variants)(
    'hard gates equal attention over the gathered open keys: %o',
    async ({ causal, favor }) => {
      const { q, k, v } = inputs();
      const mask = tf.tensor2d(maskRows);
      const gates = probs(7);
      const out = expectNoLeak(() =>
        gatedAttention(q, k, v, { gates, mode: 'hard', causal, mask, ...extra(favor) }),
      );
      const p = (await gates.array()) as number[][];
      const open = p.map((row, b) => row.map((x, j) => (x > 0.5 && maskRows[b]![j] !== 0 ? 1 : 0)));
      expect(open.flat().filter((x) => x === 1).length).toBeGreaterThan(10);
      expect(open.flat().filter((x) => x === 0).length).toBeGreaterThan(10);
      if (causal) {
        // kept positions keep their causal order: the reference masks the closed keys
        const ref = naiveGated(await arr(q), await arr(k), await arr(v), open, {
          causal,
          favor,
          mask: open,
        });
        expect(maxRelativeError(await arr(out), ref)).toBeLessThan(1e-4);
      } else {
        for (let b = 0; b < B; b++) {
          const idx = tf.tensor1d(
            open[b]!.flatMap((o, j) => (o ? [j] : [])),
            'int32',
          );
          const item = (x: tf.Tensor) => tf.slice(x, [b, 0, 0, 0], [1, -1, -1, -1]);
          const [kb, vb] = [tf.gather(item(k), idx, 2), tf.gather(item(v), idx, 2)];
          const ref = favor
            ? favorAttention(item(q), kb, vb, { featureMap: phi })
            : softmaxAttention(item(q), kb, vb);
          expect(maxRelativeError(await arr(item(out)), await arr(ref))).toBeLessThan(2e-5);
        }
      }
      tf.dispose([q, k, v, mask, gates, out]);
    },
  );

  it.each(variants)(
    'relaxed gates weight the keys by g_j (naive Float64 oracle): %o',
    async ({ causal, favor }) => {
      const { q, k, v } = inputs();
      const mask = tf.tensor2d(maskRows);
      const gates = probs(8);
      const out = gatedAttention(q, k, v, {
        gates,
        mode: 'relaxed',
        temperature: 0.7,
        seed: 42,
        causal,
        mask,
        ...extra(favor),
      });
      const g = (await relaxedGates(gates, 0.7, 42).array()) as number[][];
      const gm = g.map((row, b) => row.map((x, j) => (maskRows[b]![j] ? x : 0)));
      const ref = naiveGated(await arr(q), await arr(k), await arr(v), gm, {
        causal,
        favor,
        mask: maskRows,
      });
      expect(maxRelativeError(await arr(out), ref)).toBeLessThan(1e-4);
      tf.dispose([q, k, v, mask, gates, out]);
    },
  );

  it.each(variants)(
    'every gate closed: a defined, finite result (0), no NaN: %o',
    async ({ causal, favor }) => {
      const { q, k, v } = inputs();
      const gates = tf.zeros([B, L]);
      for (const mode of ['hard', 'relaxed'] as const) {
        const out = gatedAttention(q, k, v, { gates, mode, seed: 3, causal, ...extra(favor) });
        const data = await out.data();
        expect(data.every((x) => x === 0)).toBe(true);
        out.dispose();
      }
      tf.dispose([q, k, v, gates]);
    },
  );

  it('relaxed samples: P(g > 1/2) = p at any τ, the mean approaches p as τ → 0, seeded', async () => {
    const n = 20000;
    const pv = [0.1, 0.3, 0.5, 0.8];
    const p = tf.tensor2d(
      pv.flatMap((x) => Array(n).fill(x)),
      [pv.length, n],
    );
    for (const tau of [1, 0.5, 0.05]) {
      const g = (await relaxedGates(p, tau, 11).array()) as number[][];
      pv.forEach((pj, j) => {
        const above = g[j]!.filter((x) => x > 0.5).length / n;
        const se = Math.sqrt((pj * (1 - pj)) / n);
        expect(Math.abs(above - pj)).toBeLessThan(4 * se);
        if (tau === 0.05) {
          const mean = g[j]!.reduce((a, b) => a + b, 0) / n;
          expect(Math.abs(mean - pj)).toBeLessThan(4 * se + 0.01);
        }
      });
    }
    const a = await relaxedGates(p, 0.5, 5).data();
    const b = await relaxedGates(p, 0.5, 5).data();
    const c = await relaxedGates(p, 0.5, 6).data();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    p.dispose();
  });

  it('returns the sparsity penalty: the mean keep-probability over unpadded keys', async () => {
    const { q, k, v } = inputs();
    const mask = tf.tensor2d(maskRows);
    const gates = probs(9);
    const r = gatedAttention(q, k, v, { gates, mode: 'hard', mask, returnPenalty: true });
    const p = (await gates.array()) as number[][];
    const kept = p.flatMap((row, b) => row.filter((_, j) => maskRows[b]![j]));
    const want = kept.reduce((a, x) => a + x, 0) / kept.length;
    expect((await r.penalty.data())[0]).toBeCloseTo(want, 5);
    expect(r.output.shape).toEqual([B, H, L, dv]);
    tf.dispose([q, k, v, mask, gates, r.output, r.penalty]);
  });

  it.each([false, true])(
    'relaxed: gradients w.r.t. q and the gates match finite differences (favor=%s)',
    async (favor) => {
      const q = rand4([1, 1, 6, 4], 21, 0.5);
      const k = rand4([1, 1, 6, 4], 22, 0.5);
      const v = rand4([1, 1, 6, 2], 23);
      const r = rand4([1, 1, 6, 2], 24);
      const gates = tf.tensor2d([[0.2, 0.7, 0.4, 0.9, 0.55, 0.3]]);
      const phi4 = positiveSoftmax({
        projection: gaussianOrthogonal(16, 4, { seed: 2 }),
        eps: 1e-3,
      });
      const loss = (qq: tf.Tensor, gg: tf.Tensor, vv: tf.Tensor) =>
        tf.sum(
          tf.mul(
            gatedAttention(qq, k, vv, {
              gates: gg,
              mode: 'relaxed',
              seed: 4,
              temperature: 1,
              ...(favor ? { featureMap: phi4 } : {}),
            }),
            r,
          ),
        );
      await expectGradientsMatchFiniteDifferences(loss, [q, gates, v], (n) => [0, 2, n - 1]);
      tf.dispose([q, k, v, r, gates]);
      phi4.dispose();
    },
  );

  it('rejects bad gates and options, naming them', () => {
    const { q, k, v } = inputs();
    const ok = tf.ones([B, L]);
    const call = (o: object) => () =>
      gatedAttention(q, k, v, { gates: ok, mode: 'hard', ...o } as never);
    expect(call({ gates: tf.ones([B, L + 1]) })).toThrow(
      /gatedAttention: gates must have shape \[batch, keyLength\] = \[2,29\], got \[2,30\]/,
    );
    expect(call({ gates: tf.ones([B, 1, L]) })).toThrow(/gates must be a rank-2 tensor/);
    expect(call({ gates: undefined })).toThrow(/gates must be a tf.Tensor, got undefined/);
    expect(call({ mode: 'soft' })).toThrow(/mode must be 'relaxed' or 'hard', got "soft"/);
    expect(call({ mode: 'relaxed', temperature: 0 })).toThrow(
      /temperature must be a finite number > 0, got 0/,
    );
    expect(call({ seed: 1.5 })).toThrow(/seed must be an integer, got 1.5/);
    expect(call({ featureMap: {} })).toThrow(/featureMap must implement FeatureMap/);
    tf.dispose([q, k, v, ok]);
  });
});
