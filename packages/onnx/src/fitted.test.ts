import { favorAttention } from '@kernel-attention/core';
import { maxRelativeError, rand4 } from '@kernel-attention/core/testing';
import {
  type DenseExponentialVariant,
  denseExponentialSoftmax,
  positiveSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { runFittedFavor } from './fitted.js';
import { OnnxAttention } from './runner.js';

const sessions: OnnxAttention[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});
const open = async (p: Promise<OnnxAttention>) => {
  const s = await p;
  sessions.push(s);
  return s;
};
/** [B, Lk]: the last `pad` keys of batch item 1 padded. */
function mask(B: number, Lk: number, pad: number): tf.Tensor2D {
  const m = new Float32Array(B * Lk).fill(1);
  for (let j = Lk - pad; j < Lk; j++) m[Lk + j] = 0;
  return tf.tensor2d(m, [B, Lk]);
}

describe("FAVOR++ and the dense-exponential maps as a 'fitted' ONNX graph", () => {
  const cases: {
    variant: DenseExponentialVariant;
    antithetic?: boolean;
    causal: boolean;
    masked: boolean;
    L: number;
  }[] = [
    { variant: 'oprf', causal: false, masked: false, L: 13 },
    { variant: 'oprf', causal: true, masked: true, L: 21 },
    { variant: 'saderf', causal: false, masked: true, L: 13 },
    { variant: 'saderf', causal: true, masked: false, L: 21 },
    { variant: 'aderf', causal: false, masked: true, L: 13 },
    { variant: 'aderf', causal: true, masked: true, L: 21 },
    { variant: 'sderf', causal: false, masked: false, L: 13 },
    { variant: 'sderf', causal: true, masked: true, L: 21 },
    { variant: 'oprf', antithetic: true, causal: false, masked: true, L: 13 },
    { variant: 'sderf', antithetic: true, causal: true, masked: false, L: 21 },
    // causal, shorter than causalFitLength: every query uses the unfitted map (FAVOR+)
    { variant: 'aderf', causal: true, masked: false, L: 6 },
  ];
  it.each(cases)(
    'equals core favorAttention with the same map: %o',
    async ({ variant, antithetic, causal, masked, L }) => {
      const [B, H, d, dv, m] = [2, 2, 8, 3, 16];
      const q = rand4([B, H, L, d], 40, 1.2);
      const k = rand4([B, H, L, d], 41, 0.9);
      const v = rand4([B, H, L, dv], 42);
      const keep = masked ? mask(B, L, 4) : undefined;
      const featureMap = denseExponentialSoftmax({
        variant,
        projection: gaussianOrthogonal(m, d, { seed: 43 }),
        eps: 1e-4,
        antithetic: antithetic === true,
      });
      const session = await open(
        OnnxAttention.favor({
          dim: d,
          numProjections: featureMap.numFeatures,
          featureMap: 'fitted',
          eps: 1e-4,
          causal,
          mask: masked,
          chunkSize: 8,
        }),
      );
      const before = tf.memory().numTensors;
      const out = await runFittedFavor(
        session,
        featureMap,
        { q, k, v, ...(keep ? { mask: keep } : {}) },
        { causalFitLength: 8 },
      );
      expect(tf.memory().numTensors).toBe(before);
      expect(out.dims).toEqual([B, H, L, dv]);
      const ours = favorAttention(q, k, v, {
        featureMap,
        causal,
        causalFitLength: 8,
        ...(keep ? { mask: keep } : {}),
      });
      expect(
        maxRelativeError(Array.from(out.data), Array.from(await ours.data()), 1e-4),
      ).toBeLessThan(1e-5);
      featureMap.dispose();
      tf.dispose([q, k, v, ours, ...(keep ? [keep] : [])]);
    },
  );

  it('causal: no output depends on a later position, the fit included', async () => {
    const [L, d, m, t] = [24, 4, 8, 15];
    const featureMap = denseExponentialSoftmax({
      variant: 'saderf',
      projection: gaussianOrthogonal(m, d, { seed: 5 }),
      eps: 1e-4,
    });
    const session = await open(
      OnnxAttention.favor({
        dim: d,
        numProjections: m,
        featureMap: 'fitted',
        eps: 1e-4,
        causal: true,
        chunkSize: 4,
      }),
    );
    const q = rand4([1, 1, L, d], 6);
    const k = rand4([1, 1, L, d], 7);
    const v = rand4([1, 1, L, 2], 8);
    const before = await runFittedFavor(session, featureMap, { q, k, v }, { causalFitLength: 10 });
    const kData = Float32Array.from(await k.data());
    kData.fill(9, t * d, (t + 1) * d);
    const k2 = tf.tensor4d(kData, [1, 1, L, d]);
    const after = await runFittedFavor(
      session,
      featureMap,
      { q, k: k2, v },
      { causalFitLength: 10 },
    );
    expect(Array.from(after.data.subarray(0, t * 2))).toEqual(
      Array.from(before.data.subarray(0, t * 2)),
    );
    expect(Array.from(after.data.subarray(t * 2))).not.toEqual(
      Array.from(before.data.subarray(t * 2)),
    );
    featureMap.dispose();
    tf.dispose([q, k, v, k2]);
  });

  it('says what is wrong', async () => {
    const w = gaussianOrthogonal(8, 4, { seed: 1 });
    const plain = await open(OnnxAttention.favor({ dim: 4, numProjections: 8 }));
    const fitted = await open(
      OnnxAttention.favor({ dim: 4, numProjections: 8, featureMap: 'fitted' }),
    );
    const featureMap = denseExponentialSoftmax({ variant: 'oprf', projection: w });
    const positive = positiveSoftmax({ projection: w });
    const q = rand4([1, 1, 3, 4], 1);
    await expect(runFittedFavor(plain, featureMap, { q, k: q, v: q })).rejects.toThrow(
      /attention must be an OnnxAttention of a 'fitted' FAVOR graph/,
    );
    await expect(runFittedFavor(fitted, positive, { q, k: q, v: q })).rejects.toThrow(
      /featureMap must be a data-dependent map with prepare .*got positiveSoftmax/,
    );
    await expect(
      runFittedFavor(fitted, featureMap, { q: [[1]] as never, k: q, v: q }),
    ).rejects.toThrow(/q must be a 4-D tfjs tensor/);
    await expect(
      fitted.run({ q, k: q, v: q, projection: { data: new Float32Array(64), dims: [1, 2, 8, 4] } }),
    ).rejects.toThrow(/must be \[1, 1, m, 4\] \(per \(batch, head\) group\)/);
    await expect(
      fitted.run({ q, k: q, v: q, projection: { data: new Float32Array(32), dims: [1, 1, 8, 4] } }),
    ).rejects.toThrow(/this 'fitted' graph needs queryTransform/);
    featureMap.dispose();
    positive.dispose();
    q.dispose();
  });
});
