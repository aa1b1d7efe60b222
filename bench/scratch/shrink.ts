import { softmaxAttention } from '@kernel-attention/core';
import { useBackend } from '@kernel-attention/core/testing';
import {
  denseExponentialSoftmax,
  hyperbolicSoftmax,
  positiveSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { gaussian } from '../src/timing.js';

await useBackend('wasm');
const L = 1024,
  d = 64,
  m = 256;
const res: Record<string, number[]> = {};
for (let s = 0; s < 6; s++) {
  const q = gaussian([1, 1, L, d], 1000 + s, 0.5),
    k = gaussian([1, 1, L, d], 2000 + s, 0.5),
    v = gaussian([1, 1, L, d], 3000 + s, 1);
  const exact = softmaxAttention(q, k, v);
  const w = gaussianOrthogonal(m, d, { seed: 7919 * s + m + d });
  for (const [name, phi0] of [
    ['positive', positiveSoftmax({ projection: w, eps: 1e-4 })],
    ['hyperbolic', hyperbolicSoftmax({ projection: w, eps: 1e-4 })],
    ['aderf', denseExponentialSoftmax({ variant: 'aderf', projection: w })],
    [
      'aderf±',
      denseExponentialSoftmax({
        variant: 'aderf',
        projection: {
          rows: 2 * m,
          cols: d,
          data: Float64Array.from([...w.data, ...w.data.map((x) => -x)]),
        },
      }),
    ],
    [
      'oprf±',
      denseExponentialSoftmax({
        variant: 'oprf',
        projection: {
          rows: 2 * m,
          cols: d,
          data: Float64Array.from([...w.data, ...w.data.map((x) => -x)]),
        },
      }),
    ],
  ] as const) {
    const errs = tf.tidy(() => {
      const q3 = tf.reshape(q, [1, L, d]),
        k3 = tf.reshape(k, [1, L, d]),
        v3 = tf.reshape(v, [1, L, d]);
      const phi = (phi0 as { prepare?: Function }).prepare
        ? (phi0 as any).prepare(q3, k3, null)
        : phi0;
      const qf = phi.features(q3, 'query'),
        kf = phi.features(k3, 'key');
      const M = qf.shape[2]!;
      const vOnes = tf.concat([v3, tf.ones([1, L, 1])], 2);
      const groups = 4;
      const parts = Array.from({ length: groups }, (_, g) => {
        const sz = M / groups;
        const a = tf.slice(qf, [0, 0, g * sz], [-1, -1, sz]),
          b = tf.slice(kf, [0, 0, g * sz], [-1, -1, sz]);
        return tf.matMul(a, tf.matMul(b, vOnes, true, false));
      });
      const ratio = (x: tf.Tensor) =>
        tf.div(tf.slice(x, [0, 0, 0], [-1, -1, d]), tf.slice(x, [0, 0, d], [-1, -1, 1]));
      const full = ratio(tf.addN(parts));
      const h1 = ratio(tf.add(parts[0]!, parts[1]!)),
        h2 = ratio(tf.add(parts[2]!, parts[3]!));
      const ex = tf.reshape(exact, [1, L, d]);
      const meanV = tf.mean(v3, 1, true);
      const err = (o: tf.Tensor) => tf.div(tf.norm(tf.sub(o, ex)), tf.norm(ex)).dataSync()[0]!;
      const lam = (axes: number[]) => {
        const noise = tf.div(tf.sum(tf.square(tf.sub(h1, h2)), axes, true), 4);
        const total = tf.sum(tf.square(tf.sub(full, meanV)), axes, true);
        const signal = tf.relu(tf.sub(total, noise));
        return tf.div(signal, tf.add(signal, noise));
      };
      // 4-group noise: sample variance of the 4 quarter estimates / 4 ... quarters each have 4σ² → var/4 = σ²
      const qs = parts.map(ratio);
      const qmean = tf.div(tf.addN(qs), 4);
      const lam4 = (axes: number[]) => {
        const noise = tf.div(
          tf.sum(tf.addN(qs.map((x) => tf.square(tf.sub(x, qmean)))), axes, true),
          12,
        ); // (Σ|x−x̄|²/3)/4
        const total = tf.sum(tf.square(tf.sub(full, meanV)), axes, true);
        const signal = tf.relu(tf.sub(total, noise));
        return tf.div(signal, tf.add(signal, noise));
      };
      const mix = (l: tf.Tensor) => tf.add(tf.mul(l, full), tf.mul(tf.sub(1, l), meanV));
      const diff = tf.sub(full, meanV);
      const oracle = tf.div(tf.sum(tf.mul(tf.sub(ex, meanV), diff)), tf.sum(tf.square(diff)));
      return {
        oracle: err(mix(oracle)),
        plain: err(full),
        group: err(mix(lam([1, 2]))),
        row: err(mix(lam([2]))),
        group4: err(mix(lam4([1, 2]))),
        row4: err(mix(lam4([2]))),
      };
    });
    for (const [k2, e] of Object.entries(errs)) (res[`${name}:${k2}`] ??= []).push(e);
  }
}
for (const [k2, e] of Object.entries(res))
  console.log(k2, (e.reduce((a, b) => a + b, 0) / e.length).toFixed(4));
