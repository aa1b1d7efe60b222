import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { rand4 } from '../testing/suites.js';
import { causalState, favorCausalStep } from './causal-state.js';
import { favorAttention } from './favor/favor-attention.js';
import { linearAttention } from './linear-attention.js';

/** Float64: out_i = Σ_{j≤i} (q_i·k_j) v_j / (q_i·(Σ_{j≤i} k_j + eps·1)). */
function naive(q: number[][], k: number[][], v: number[][], eps: number, causal: boolean) {
  return q.map((qi, i) => {
    const z = qi.map(() => eps);
    const num = v[0]!.map(() => 0);
    k.forEach((kj, j) => {
      if (causal && j > i) return;
      const w = kj.reduce((a, x, t) => a + x * qi[t]!, 0);
      kj.forEach((x, t) => {
        z[t]! += x;
      });
      v[j]!.forEach((x, t) => {
        num[t]! += w * x;
      });
    });
    const den = z.reduce((a, x, t) => a + x * qi[t]!, 0);
    return num.map((x) => x / den);
  });
}

it.each([false, true])(
  'denominatorEps adds eps·Σ_f φ(q)_f to the denominator (causal=%s)',
  async (causal) => {
    const qf = tf.abs(rand4([1, 1, 9, 4], 1));
    const kf = tf.abs(rand4([1, 1, 9, 4], 2));
    const v = rand4([1, 1, 9, 2], 3);
    const eps = 0.3; // large, so that a missing term shows
    const out = linearAttention(qf, kf, v, { causal, denominatorEps: eps });
    const ref = naive(
      (await qf.array())[0]![0]!,
      (await kf.array())[0]![0]!,
      (await v.array())[0]![0]!,
      eps,
      causal,
    );
    const got = (await out.array())[0]![0]!;
    got.forEach((row, i) => {
      row.forEach((x, t) => {
        expect(x).toBeCloseTo(ref[i]![t]!, 5);
      });
    });
    tf.dispose([qf, kf, v, out]);
  },
);

it('favorCausalStep with denominatorEps equals the causal favorAttention call on the same prefix', async () => {
  const phi = softmaxKernelFeatures(4, 8, { seed: 2 });
  const q = rand4([1, 2, 6, 4], 4, 0.5);
  const v = rand4([1, 2, 6, 3], 5);
  const eps = 1e-2;
  let state = causalState({ batch: 1, heads: 2, numFeatures: 8, valueDim: 3 });
  for (let i = 0; i < 6; i++) {
    const at = (t: tf.Tensor) => tf.slice(t, [0, 0, i, 0], [1, 2, 1, t.shape[3]!]);
    const { output, state: next } = favorCausalStep(state, at(q), at(q), at(v), {
      featureMap: phi,
      denominatorEps: eps,
    });
    state.dispose();
    state = next;
    const prefix = favorAttention(
      tf.slice(q, 0, [1, 2, i + 1, 4]),
      tf.slice(q, 0, [1, 2, i + 1, 4]),
      tf.slice(v, 0, [1, 2, i + 1, 3]),
      {
        featureMap: phi,
        causal: true,
        denominatorEps: eps,
      },
    );
    const a = (await output.array())[0]!;
    const b = (await prefix.array())[0]!;
    for (let h = 0; h < 2; h++)
      for (const [t, x] of a[h]![0]!.entries()) expect(x).toBeCloseTo(b[h]![i]![t]!, 5);
    tf.dispose([output, prefix]);
  }
  state.dispose();
  tf.dispose([q, v]);
  phi.dispose();
});

it('rejects a bad denominatorEps', () => {
  const x = tf.ones([1, 1, 2, 2]);
  expect(() => linearAttention(x, x, x, { denominatorEps: -1 })).toThrow(
    /denominatorEps must be a finite number >= 0, got -1/,
  );
  x.dispose();
});
