import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  type Array4,
  expectGradientsMatchFiniteDifferences,
  expectNoLeak,
  maxRelativeError,
  naiveLinearAttention,
  naiveSoftmaxAttention,
  rand4,
  randomArray,
} from '../testing/suites.js';
import { favorAttention } from './favor/favor-attention.js';
import { softmaxAttention } from './softmax-attention.js';

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const [B, H, L, N, d, dv] = [2, 3, 37, 5, 8, 4];
const rand3 = (shape: [number, number, number], seed: number, scale = 1) =>
  tf.tensor3d(randomArray(shape, seed, scale), shape);
/** [M; X] along the length axis, the memory repeated for every batch item. */
const joined = (m: tf.Tensor, x: tf.Tensor) =>
  tf.concat([tf.broadcastTo(tf.expandDims(m, 0), [B, ...m.shape] as number[]), x], 2);
const padMask = () =>
  tf.tensor2d([Array(L).fill(1), [...Array(L - 6).fill(1), ...Array(6).fill(0)]]);
/** The [B][N + L] reference mask: memory always kept. */
const refMask = async (mask: tf.Tensor) =>
  ((await mask.array()) as number[][]).map((row) => [...Array(N).fill(1), ...row]);

function inputs() {
  return {
    q: rand4([B, H, L, d], 1, 0.5),
    k: rand4([B, H, L, d], 2, 0.5),
    v: rand4([B, H, L, dv], 3),
    memory: { keys: rand3([H, N, d], 4, 0.5), values: rand3([H, N, dv], 5) },
  };
}
const projection = gaussianOrthogonal(32, d, { seed: 1 });

describe('persistent memory (softmaxAttention, favorAttention)', () => {
  it.each([false, true])(
    'softmax: one joint softmax over [M_k; K], [M_v; V], memory visible to every query (causal=%s, padding)',
    async (causal) => {
      const { q, k, v, memory } = inputs();
      const mask = padMask();
      const out = expectNoLeak(() => softmaxAttention(q, k, v, { causal, mask, memory }));
      const ref = naiveSoftmaxAttention(
        await arr(q),
        await arr(joined(memory.keys, k)),
        await arr(joined(memory.values, v)),
        { causal, mask: await refMask(mask), memory: N },
      );
      expect(out.shape).toEqual([B, H, L, dv]);
      expect(maxRelativeError(await arr(out), ref)).toBeLessThan(2e-5);
      tf.dispose([q, k, v, memory.keys, memory.values, mask, out]);
    },
  );

  it.each([false, true])(
    'FAVOR+: the memory’s features seed the state and the normaliser (causal=%s, padding)',
    async (causal) => {
      const { q, k, v, memory } = inputs();
      const mask = padMask();
      const phi = positiveSoftmax({ projection, eps: 1e-6 });
      favorAttention(q, k, v, { featureMap: phi }).dispose(); // uploads the projection once
      const out = expectNoLeak(() =>
        favorAttention(q, k, v, { featureMap: phi, causal, mask, memory }),
      );
      // the oracle: linear attention on φ(q) and φ([M_k; K]) (one key stabilizer over memory and
      // the unpadded keys, as favorAttention's), memory slots visible to all
      const kj = joined(memory.keys, k);
      const keep = tf.reshape(tf.concat([tf.ones([B, N]), mask], 1), [B, 1, N + L, 1]);
      const flat = (x: tf.Tensor) => tf.reshape(x, [B * H, x.shape[2]!, x.shape[3]!]);
      const qf = tf.reshape(phi.features(flat(q), 'query'), [B, H, L, 32]);
      const kf = tf.reshape(phi.features(flat(tf.mul(kj, keep)), 'key'), [B, H, N + L, 32]);
      const ref = naiveLinearAttention(
        await arr(qf),
        await arr(kf),
        await arr(joined(memory.values, v)),
        {
          causal,
          mask: await refMask(mask),
          memory: N,
        },
      );
      expect(maxRelativeError(await arr(out), ref)).toBeLessThan(2e-5);
      // bidirectional: the same as favorAttention over the joined keys and values
      if (!causal) {
        const direct = favorAttention(q, kj, joined(memory.values, v), {
          featureMap: phi,
          mask: tf.concat([tf.ones([B, N]), mask], 1),
        });
        expect(maxRelativeError(await arr(out), await arr(direct))).toBeLessThan(2e-5);
      }
      tf.dispose([q, k, v, memory.keys, memory.values, mask, out, kj, keep, qf, kf]);
      phi.dispose();
    },
  );

  it('N = 0 slots gives the base attention, exactly', async () => {
    const { q, k, v, memory } = inputs();
    const empty = { keys: tf.zeros([H, 0, d]), values: tf.zeros([H, 0, dv]) };
    const phi = positiveSoftmax({ projection });
    for (const causal of [false, true]) {
      const a = softmaxAttention(q, k, v, { causal, memory: empty });
      const b = softmaxAttention(q, k, v, { causal });
      expect(await a.data()).toEqual(await b.data());
      const c = favorAttention(q, k, v, { featureMap: phi, causal, memory: empty });
      const e = favorAttention(q, k, v, { featureMap: phi, causal });
      expect(await c.data()).toEqual(await e.data());
      tf.dispose([a, b, c, e]);
    }
    tf.dispose([q, k, v, memory.keys, memory.values, empty.keys, empty.values]);
    phi.dispose();
  });

  it('permuting the memory slots changes nothing', async () => {
    const { q, k, v, memory } = inputs();
    const perm = tf.tensor1d([3, 0, 4, 2, 1], 'int32');
    const shuffled = {
      keys: tf.gather(memory.keys, perm, 1),
      values: tf.gather(memory.values, perm, 1),
    };
    const phi = positiveSoftmax({ projection });
    for (const causal of [false, true]) {
      const pairs: [tf.Tensor, tf.Tensor][] = [
        [
          softmaxAttention(q, k, v, { causal, memory }),
          softmaxAttention(q, k, v, { causal, memory: shuffled }),
        ],
        [
          favorAttention(q, k, v, { featureMap: phi, causal, memory }),
          favorAttention(q, k, v, { featureMap: phi, causal, memory: shuffled }),
        ],
      ];
      for (const [a, b] of pairs) {
        expect(maxRelativeError(await arr(a), await arr(b))).toBeLessThan(1e-5);
        tf.dispose([a, b]);
      }
    }
    tf.dispose([q, k, v, memory.keys, memory.values, perm, shuffled.keys, shuffled.values]);
    phi.dispose();
  });

  it('no causal leak: later keys and values do not move earlier outputs; the memory moves all', async () => {
    const { q, k, v, memory } = inputs();
    const t = 20; // change positions ≥ t
    const later = (x: tf.Tensor, seed: number) => {
      const noise = rand4(x.shape as [number, number, number, number], seed, 3);
      const pos = tf.reshape(tf.greaterEqual(tf.range(0, L), t), [1, 1, L, 1]);
      return tf.where(tf.broadcastTo(pos, x.shape), noise, x);
    };
    const [k2, v2] = [later(k, 11), later(v, 12)];
    const phi = positiveSoftmax({ projection, eps: 0 }); // eps 0: see the causal-key-stabilizer note
    const runs = [
      (kk: tf.Tensor, vv: tf.Tensor, m = memory) =>
        softmaxAttention(q, kk, vv, { causal: true, memory: m }),
      (kk: tf.Tensor, vv: tf.Tensor, m = memory) =>
        favorAttention(q, kk, vv, { featureMap: phi, causal: true, memory: m }),
    ];
    const memory2 = { keys: memory.keys, values: tf.add(memory.values, 1) as tf.Tensor3D };
    for (const run of runs) {
      const [a, b, c] = [run(k, v), run(k2, v2), run(k, v, memory2)];
      const [ra, rb, rc] = [await arr(a), await arr(b), await arr(c)];
      const early = (x: Array4) => x.map((bb) => bb.map((h) => h.slice(0, t)));
      expect(maxRelativeError(early(rb), early(ra))).toBeLessThan(1e-5);
      expect(maxRelativeError(rb, ra)).toBeGreaterThan(1e-2); // the later rows did change
      // every output row, the first included, sees the memory
      for (let i = 0; i < L; i++)
        expect(Math.abs(rc[0]![0]![i]![0]! - ra[0]![0]![i]![0]!)).toBeGreaterThan(1e-4);
      tf.dispose([a, b, c]);
    }
    tf.dispose([q, k, v, k2, v2, memory.keys, memory.values, memory2.values]);
    phi.dispose();
  });

  it.each([false, true])(
    'gradients reach the memory keys and values (causal=%s)',
    async (causal) => {
      const { q, k, v, memory } = inputs();
      const phi = positiveSoftmax({ projection, eps: 1e-3 });
      const w = rand4([B, H, L, dv], 9);
      const loss =
        (
          f:
            | typeof softmaxAttention
            | ((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, o: object) => tf.Tensor),
        ) =>
        (qq: tf.Tensor, mk: tf.Tensor, mv: tf.Tensor) =>
          tf.sum(tf.mul(f(qq, k, v, { causal, memory: { keys: mk, values: mv } }), w));
      const favor = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, o: object) =>
        favorAttention(a, b, c, { ...o, featureMap: phi });
      const entries = (size: number) => [0, Math.floor(size / 2), size - 1];
      await expectGradientsMatchFiniteDifferences(
        loss(softmaxAttention),
        [q, memory.keys, memory.values],
        entries,
      );
      await expectGradientsMatchFiniteDifferences(
        loss(favor),
        [q, memory.keys, memory.values],
        entries,
      );
      tf.dispose([q, k, v, memory.keys, memory.values, w]);
      phi.dispose();
    },
  );

  it('rejects a memory that does not fit the call, naming it', () => {
    const { q, k, v, memory } = inputs();
    const phi = positiveSoftmax({ projection });
    const bad = (m: unknown) => () => softmaxAttention(q, k, v, { memory: m as never });
    expect(bad({ keys: tf.zeros([2, N, d]), values: tf.zeros([2, N, dv]) })).toThrow(
      /memory.keys and memory.values must have one slot set per head \(3\), got memory.keys \[2,5,8\]/,
    );
    expect(bad({ keys: memory.keys, values: tf.zeros([H, N + 1, dv]) })).toThrow(
      /same number of slots, got memory.keys \[3,5,8\] and memory.values \[3,6,4\]/,
    );
    expect(bad({ keys: tf.zeros([H, N, d + 1]), values: memory.values })).toThrow(
      /memory.keys must end in the key dimension 8 and memory.values in the value dimension 4, got memory.keys \[3,5,9\]/,
    );
    expect(bad({ keys: memory.keys })).toThrow(/memory.values/);
    expect(bad(null)).toThrow(
      /memory must be \{ keys: \[H, N, d\], values: \[H, N, dv\] \}, got null/,
    );
    expect(() =>
      favorAttention(q, k, v, {
        featureMap: phi,
        memory: { keys: tf.zeros([H, N, d, 1]), values: memory.values } as never,
      }),
    ).toThrow(/favorAttention: memory.keys/);
    tf.dispose([q, k, v, memory.keys, memory.values]);
    phi.dispose();
  });
});
