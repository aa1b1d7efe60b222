import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import {
  maxRelativeError,
  naiveFavorAttention,
  naiveSoftmaxAttention,
  rand4,
} from '@kernel-attention/core/testing';
import {
  generalized,
  hyperbolicSoftmax,
  positiveSoftmax,
  trigSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { exactAttentionModel, favorAttentionModel } from './attention-graphs.js';
import { loadOnnxRuntime, OnnxAttention } from './runner.js';

type A4 = number[][][][];
const arr = async (t: tf.Tensor) => (await t.array()) as A4;
/** [B, H, L, dv] flat → nested, for the Float64 references' comparison. */
function nest(data: Float32Array, [B, H, L, D]: number[]): A4 {
  return Array.from({ length: B! }, (_, b) =>
    Array.from({ length: H! }, (_, h) =>
      Array.from({ length: L! }, (_, i) =>
        Array.from(data.subarray(((b * H! + h) * L! + i) * D!, ((b * H! + h) * L! + i + 1) * D!)),
      ),
    ),
  );
}
const sessions: OnnxAttention[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});
const open = async (p: Promise<OnnxAttention>) => {
  const s = await p;
  sessions.push(s);
  return s;
};
const projectionInput = (w: { rows: number; cols: number; data: Float64Array }) => ({
  data: Float32Array.from(w.data),
  dims: [w.rows, w.cols],
});
/** [B, Lk] padding mask: the last `pad` keys of batch item 1 padded (all of them when pad = Lk). */
function mask(B: number, Lk: number, pad: number): tf.Tensor2D {
  const m = new Float32Array(B * Lk).fill(1);
  for (let j = Lk - pad; j < Lk; j++) m[Lk + j] = 0;
  return tf.tensor2d(m, [B, Lk]);
}

describe('exact attention as an ONNX graph on onnxruntime-node', () => {
  it.each([
    { causal: false, masked: false, Lq: 9, Lk: 9 },
    { causal: true, masked: false, Lq: 12, Lk: 12 },
    { causal: false, masked: true, Lq: 7, Lk: 11 },
    { causal: true, masked: true, Lq: 10, Lk: 10 },
  ])(
    'equals core softmaxAttention and the Float64 reference: %o',
    async ({ causal, masked, Lq, Lk }) => {
      const [B, H, d, dv] = [2, 3, 8, 5];
      const q = rand4([B, H, Lq, d], 1);
      const k = rand4([B, H, Lk, d], 2);
      const v = rand4([B, H, Lk, dv], 3);
      const keep = masked ? mask(B, Lk, 3) : undefined;
      const session = await open(OnnxAttention.exact({ dim: d, causal, mask: masked }));
      const out = await session.run({ q, k, v, ...(keep ? { mask: keep } : {}) });
      expect(out.dims).toEqual([B, H, Lq, dv]);
      const ours = softmaxAttention(q, k, v, { causal, ...(keep ? { mask: keep } : {}) });
      expect(maxRelativeError(Array.from(out.data), Array.from(await ours.data()))).toBeLessThan(
        1e-5,
      );
      const reference = naiveSoftmaxAttention(await arr(q), await arr(k), await arr(v), {
        causal,
        ...(keep ? { mask: (await keep.array()) as number[][] } : {}),
      });
      expect(maxRelativeError(nest(out.data, out.dims), reference)).toBeLessThan(1e-5);
      tf.dispose([q, k, v, ours, ...(keep ? [keep] : [])]);
    },
  );
});

describe('FAVOR+ as an ONNX graph on onnxruntime-node', () => {
  // the same cases as before: bidirectional (Lq ≠ Lk) and causal (chunk sizes that divide L or not)
  it.each([
    { map: 'positive' as const, eps: 1e-6, masked: false, scale: 0.5, causal: false },
    { map: 'positive' as const, eps: 1e-4, masked: true, scale: 1, causal: false },
    { map: 'hyperbolic' as const, eps: 1e-4, masked: false, scale: 0.7, causal: false },
    { map: 'hyperbolic' as const, eps: 0, masked: true, scale: 2, causal: false },
    {
      map: 'positive' as const,
      eps: 1e-4,
      masked: false,
      scale: 0.6,
      causal: true,
      L: 23,
      chunkSize: 8,
    },
    {
      map: 'positive' as const,
      eps: 1e-6,
      masked: true,
      scale: 1.5,
      causal: true,
      L: 16,
      chunkSize: 4,
    },
    {
      map: 'hyperbolic' as const,
      eps: 1e-4,
      masked: false,
      scale: 1,
      causal: true,
      L: 9,
      chunkSize: 64,
    },
    {
      map: 'hyperbolic' as const,
      eps: 0,
      masked: true,
      scale: 3,
      causal: true,
      L: 30,
      chunkSize: 7,
    },
  ])(
    'equals core favorAttention and the Float64 reference: %o',
    async ({ map, eps, masked, scale, causal, L, chunkSize }) => {
      const [B, H, d, m] = [2, 2, 8, 16];
      const [Lq, Lk, dv] = causal ? [L!, L!, 3] : [9, 13, 4];
      const seed = causal ? 12 : 4;
      const q = rand4([B, H, Lq, d], seed, scale);
      const k = rand4([B, H, Lk, d], seed + 1, scale);
      const v = rand4([B, H, Lk, dv], seed + 2);
      const w = gaussianOrthogonal(m, d, { seed: seed + 3 });
      const keep = masked ? mask(B, Lk, causal ? 4 : 5) : undefined;
      const session = await open(
        OnnxAttention.favor({
          dim: d,
          numProjections: m,
          featureMap: map,
          eps,
          mask: masked,
          causal,
          ...(chunkSize ? { chunkSize } : {}),
        }),
      );
      const out = await session.run({
        q,
        k,
        v,
        projection: projectionInput(w),
        ...(keep ? { mask: keep } : {}),
      });
      expect(out.dims).toEqual([B, H, Lq, dv]);
      const phi = (map === 'positive' ? positiveSoftmax : hyperbolicSoftmax)({
        projection: w,
        eps,
      });
      const ours = favorAttention(q, k, v, {
        featureMap: phi,
        causal,
        ...(keep ? { mask: keep } : {}),
      });
      expect(maxRelativeError(Array.from(out.data), Array.from(await ours.data()))).toBeLessThan(
        1e-5,
      );
      const reference = naiveFavorAttention(await arr(q), await arr(k), await arr(v), w, {
        eps,
        causal,
        hyperbolic: map === 'hyperbolic',
        ...(keep ? { mask: (await keep.array()) as number[][] } : {}),
      });
      expect(maxRelativeError(nest(out.data, out.dims), reference)).toBeLessThan(1e-5);
      phi.dispose();
      tf.dispose([q, k, v, ours, ...(keep ? [keep] : [])]);
    },
  );

  it.each([
    { scale: 0.5, what: 'typical attention' },
    { scale: 30, what: 'ℓ spread far beyond float32 range' },
  ])(
    'causal at scale $scale ($what): equals core favorAttention, finite, inside the hull of v',
    async ({ scale }) => {
      const [L, d, m] = [40, 8, 16];
      const session = await open(
        OnnxAttention.favor({ dim: d, numProjections: m, eps: 1e-4, causal: true, chunkSize: 8 }),
      );
      const w = gaussianOrthogonal(m, d, { seed: 20 });
      const q = rand4([1, 2, L, d], 21, scale);
      const k = rand4([1, 2, L, d], 22, scale);
      const v = rand4([1, 2, L, 2], 23);
      const out = await session.run({ q, k, v, projection: projectionInput(w) });
      expect(out.data.every(Number.isFinite)).toBe(true);
      const phi = positiveSoftmax({ projection: w, eps: 1e-4 });
      const ours = favorAttention(q, k, v, { featureMap: phi, causal: true });
      expect(maxRelativeError(Array.from(out.data), Array.from(await ours.data()))).toBeLessThan(
        1e-5,
      );
      phi.dispose();
      tf.dispose([q, k, v, ours]);
    },
  );

  it.each([
    { map: 'trig' as const, causal: false, masked: false },
    { map: 'trig' as const, causal: true, masked: true },
    { map: 'relu' as const, causal: false, masked: true },
    { map: 'relu' as const, causal: true, masked: false },
  ])(
    'the $map map (causal $causal, masked $masked) equals core favorAttention with it',
    async ({ map, causal, masked }) => {
      const [B, H, L, d, dv, m] = [2, 2, 19, 8, 3, 16];
      const q = rand4([B, H, L, d], 30, 0.8);
      const k = rand4([B, H, L, d], 31, 0.8);
      const v = rand4([B, H, L, dv], 32);
      const w = gaussianOrthogonal(m, d, { seed: 33 });
      const keep = masked ? mask(B, L, 4) : undefined;
      const eps = map === 'relu' ? 1e-3 : 0; // generalized's default kernelEps; trig has none
      const session = await open(
        OnnxAttention.favor({
          dim: d,
          numProjections: m,
          featureMap: map,
          eps,
          causal,
          mask: masked,
          chunkSize: 8,
        }),
      );
      const out = await session.run({
        q,
        k,
        v,
        projection: projectionInput(w),
        ...(keep ? { mask: keep } : {}),
      });
      const phi =
        map === 'trig'
          ? trigSoftmax({ projection: w })
          : generalized({ fn: 'relu', projection: w });
      const ours = favorAttention(q, k, v, {
        featureMap: phi,
        causal,
        ...(keep ? { mask: keep } : {}),
      });
      expect(
        maxRelativeError(Array.from(out.data), Array.from(await ours.data()), 1e-4),
      ).toBeLessThan(1e-4);
      phi.dispose();
      tf.dispose([q, k, v, ours, ...(keep ? [keep] : [])]);
    },
  );

  it('causal: no output depends on a later key, its stabilizer included', async () => {
    const [L, d, m, t] = [20, 4, 8, 11];
    const session = await open(
      OnnxAttention.favor({ dim: d, numProjections: m, eps: 1e-3, causal: true, chunkSize: 4 }),
    );
    const w = projectionInput(gaussianOrthogonal(m, d, { seed: 16 }));
    const q = rand4([1, 1, L, d], 17);
    const v = rand4([1, 1, L, 2], 18);
    const k = rand4([1, 1, L, d], 19);
    const before = await session.run({ q, k, v, projection: w });
    // a huge key at position t: it would dominate a sequence-wide stabilizer
    const kData = Float32Array.from(await k.data());
    kData.fill(12, t * d, (t + 1) * d);
    const after = await session.run({
      q,
      k: { data: kData, dims: [1, 1, L, d] },
      v,
      projection: w,
    });
    expect(Array.from(after.data.subarray(0, t * 2))).toEqual(
      Array.from(before.data.subarray(0, t * 2)),
    );
    expect(Array.from(after.data.subarray(t * 2))).not.toEqual(
      Array.from(before.data.subarray(t * 2)),
    );
    tf.dispose([q, v, k]);
  });

  it('takes a new projection without a new graph (a feature redraw), and gives 0 where every key is padded', async () => {
    const [B, H, L, d, m] = [2, 1, 6, 4, 8];
    const session = await open(OnnxAttention.favor({ dim: d, numProjections: m, mask: true }));
    const q = rand4([B, H, L, d], 8);
    const v = rand4([B, H, L, 3], 9);
    const keep = mask(B, L, L); // batch item 1: every key padded
    for (const seed of [1, 2]) {
      const w = gaussianOrthogonal(m, d, { seed });
      const out = await session.run({ q, k: q, v, projection: projectionInput(w), mask: keep });
      const phi = positiveSoftmax({ projection: w });
      const ours = favorAttention(q, q, v, { featureMap: phi, mask: keep });
      expect(maxRelativeError(Array.from(out.data), Array.from(await ours.data()))).toBeLessThan(
        1e-5,
      );
      expect(Array.from(out.data.subarray(L * 3))).toEqual(new Array(L * 3).fill(0));
      phi.dispose();
      ours.dispose();
    }
    tf.dispose([q, v, keep]);
  });

  it('stays finite at large query and key norms (the stabilizers at work)', async () => {
    const [d, m] = [8, 16];
    const session = await open(OnnxAttention.favor({ dim: d, numProjections: m }));
    const q = rand4([1, 1, 5, d], 10, 30);
    const v = rand4([1, 1, 5, 2], 11);
    const out = await session.run({
      q,
      k: q,
      v,
      projection: projectionInput(gaussianOrthogonal(m, d, { seed: 3 })),
    });
    expect(out.data.every(Number.isFinite)).toBe(true);
    const vs = Array.from(await v.data());
    for (const x of out.data) {
      expect(x).toBeGreaterThanOrEqual(Math.min(...vs) - 1e-5); // a convex combination of v
      expect(x).toBeLessThanOrEqual(Math.max(...vs) + 1e-5);
    }
    tf.dispose([q, v]);
  });

  it('says what is wrong with bad options and bad inputs', async () => {
    expect(() => favorAttentionModel(null as never)).toThrow(
      /favorAttentionModel: options \{ dim, numProjections, featureMap, eps, mask, causal, chunkSize \} are required, got null/,
    );
    expect(() => favorAttentionModel({ dim: 0, numProjections: 4 })).toThrow(
      /dim must be a positive integer, got 0/,
    );
    expect(() =>
      favorAttentionModel({ dim: 4, numProjections: 4, featureMap: 'exp' as never }),
    ).toThrow(
      /featureMap must be one of 'positive', 'hyperbolic', 'trig', 'relu', 'fitted', got "exp"/,
    );
    expect(() => exactAttentionModel({ dim: 2.5 })).toThrow(
      /dim must be a positive integer, got 2.5/,
    );
    const session = await open(OnnxAttention.favor({ dim: 4, numProjections: 4 }));
    const x = { data: new Float32Array(1 * 1 * 3 * 4), dims: [1, 1, 3, 4] };
    await expect(session.run({ q: x, k: x, v: x })).rejects.toThrow(/needs projection \[m, d\]/);
    await expect(
      session.run({ q: x, k: x, v: x, projection: { data: new Float32Array(12), dims: [4, 3] } }),
    ).rejects.toThrow(/projection \[4,3\] must have d = 4 columns/);
    await expect(session.run({ q: [[1]] as never, k: x, v: x, projection: x })).rejects.toThrow(
      /q must be a tfjs tensor or \{ data: Float32Array, dims \}, got an array/,
    );
    await expect(
      session.run({ q: { data: new Float32Array(5), dims: [1, 1, 3, 4] }, k: x, v: x }),
    ).rejects.toThrow(/q has 5 values for dims \[1, 1, 3, 4\] \(12 expected\)/);
    await expect(
      session.run({
        q: x,
        k: x,
        v: x,
        projection: { data: new Float32Array(16), dims: [4, 4] },
        mask: x,
      }),
    ).rejects.toThrow(/built without a mask/);
    await expect(loadOnnxRuntime('onnxruntime-node-not-installed')).rejects.toThrow(
      /cannot load onnxruntime-node-not-installed .*npm install onnxruntime-node-not-installed/,
    );
  });
});
