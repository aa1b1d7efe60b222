// Regression tests for the defects an outside fuzzing harness found, each named after its defect
// and built from its reproduction. Part of the shared parity suite: every backend runs them.
import {
  denseExponentialSoftmax,
  type FeatureMap,
  generalized,
  hyperbolicSoftmax,
  optimizedPositiveSoftmax,
  positiveSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { rpeFavorAttention } from '../mechanisms/rpe-favor-attention.js';
import { causalState, favorCausalStep } from '../ops/causal-state.js';
import { favorAttention } from '../ops/favor/favor-attention.js';
import { SYNC_READ_BACKENDS, scoped } from './backends.js';
import {
  type Array4,
  maxRelativeError,
  naiveFavorAttention,
  naiveSoftmaxAttention,
} from './reference.js';

const t4 = (rows: number[][], shape?: [number, number, number, number]) =>
  tf.tensor4d(rows.flat(), shape ?? [1, 1, rows.length, rows[0]!.length]);

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** Runs the steps of favorCausalStep over [1, 1, L, ·] inputs; returns each step's output. */
async function stepped(
  phi: FeatureMap,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
): Promise<number[][]> {
  const L = q.shape[2]!;
  let state = causalState({
    batch: 1,
    heads: 1,
    numFeatures: phi.numFeatures,
    valueDim: v.shape[3]!,
  });
  const out: number[][] = [];
  for (let t = 0; t < L; t++) {
    const at = (x: tf.Tensor) => tf.slice(x, [0, 0, t, 0], [-1, -1, 1, -1]);
    const r = favorCausalStep(state, at(q), at(k), at(v), { featureMap: phi });
    state.dispose();
    state = r.state;
    out.push(await values(r.output));
  }
  state.dispose();
  return out;
}

export function runRegressionSuite(opts: { backend: string; tolerance: number }): void {
  const { backend, tolerance } = opts;
  const sync = SYNC_READ_BACKENDS.includes(backend);

  // heavy on SwiftShader's emulated GPUs (a minute when every project runs at once): a long
  // harness limit, so that a slow machine does not turn into a cascade of engine errors
  describe(`regressions on ${backend}`, { timeout: 300_000 }, () => {
    it('causal outputs depend on future keys: out[1] is the same whatever key 2 is, for every stabilized map and in rpeFavorAttention', async () => {
      await scoped(async () => {
        const projection = gaussianOrthogonal(16, 2, { seed: 0 });
        const maps: [string, FeatureMap][] = [
          ['positive', positiveSoftmax({ projection })],
          ['positive eps 1e-3', positiveSoftmax({ projection, eps: 1e-3 })],
          ['hyperbolic', hyperbolicSoftmax({ projection })],
          ['exp', generalized({ projection, fn: 'exp' })],
          ['oprf', optimizedPositiveSoftmax({ projection })],
          ['saderf', denseExponentialSoftmax({ variant: 'saderf', projection })],
          ['sderf', denseExponentialSoftmax({ variant: 'sderf', projection })],
        ];
        const q = t4([
          [1, 0],
          [1, 0],
          [1, 0],
        ]);
        const v = t4([[1], [3], [100]]);
        for (const [name, phi] of maps) {
          const outs: number[][] = [];
          const rpe: number[][] = [];
          for (const k2 of [
            [0, 0],
            [8, 8],
            [12, 12],
          ]) {
            const k = t4([[1, 0], [0, 1], k2]);
            outs.push(await values(favorAttention(q, k, v, { featureMap: phi, causal: true })));
            const relativeBias = tf.zeros([1, 5]);
            rpe.push(
              await values(
                rpeFavorAttention(q, k, v, {
                  featureMap: phi,
                  relativeBias,
                  causal: true,
                  method: 'toeplitz',
                }),
              ),
            );
            // the decoding steps give exactly the causal call's outputs on the same prefix
            const steps = await stepped(phi, q, k, v);
            expect(maxRelativeError(steps.flat(), outs.at(-1)!)).toBeLessThan(10 * tolerance);
          }
          for (const runs of [outs, rpe]) {
            for (const o of runs.slice(1)) {
              expect(o[0], name).toBe(runs[0]![0]);
              expect(o[1], name).toBe(runs[0]![1]); // bit for bit: key 2 is in out[1]'s future
            }
          }
          expect(maxRelativeError(rpe[0]!, outs[0]!), name).toBeLessThan(10 * tolerance);
          if (typeof phi.prepare !== 'function') {
            // out[1] is the bidirectional estimate on the prefix (keys 0 and 1). Not so for the
            // data-dependent maps: their bidirectional call fits to the keys it sees, causal ones
            // fit on the first causalFitLength positions only.
            const prefix = await values(
              favorAttention(
                tf.slice(q, [0, 0, 1, 0], [-1, -1, 1, -1]),
                t4([
                  [1, 0],
                  [0, 1],
                ]),
                t4([[1], [3]]),
                { featureMap: phi },
              ),
            );
            expect(Math.abs(prefix[0]! - outs[0]![1]!), name).toBeLessThan(30 * tolerance);
          }
        }
        // the positive map against its Float64 oracle (a per-query stabilizer over keys ≤ i)
        const phi = positiveSoftmax({ projection, eps: 1e-3 });
        const k = t4([
          [1, 0],
          [0, 1],
          [12, 12],
        ]);
        const ref = naiveFavorAttention(
          (await q.array()) as Array4,
          (await k.array()) as Array4,
          (await v.array()) as Array4,
          projection,
          { causal: true, eps: 1e-3 },
        );
        expect(
          maxRelativeError(
            await values(favorAttention(q, k, v, { featureMap: phi, causal: true })),
            ref.flat(3),
          ),
        ).toBeLessThan(10 * tolerance);
      });
    });

    it('ADERF returns NaN whenever L < d: a one-token call gives the one value it sees', async () => {
      await scoped(async () => {
        const phi = denseExponentialSoftmax({
          variant: 'aderf',
          projection: gaussianOrthogonal(4, 2, { seed: 0 }),
        });
        const x = tf.tensor4d([[[[0.5, -1]]]]);
        const call = () => favorAttention(x, x, tf.tensor4d([[[[1]]]]), { featureMap: phi });
        if (!sync) {
          expect(call).toThrow(/synchronous reads/); // the eigen-fit runs on the CPU
          return;
        }
        expect(await values(call())).toEqual([1]);
        // and with fewer positions than dimensions in general: finite, inside the hull of v
        const d = 6;
        const wide = denseExponentialSoftmax({
          variant: 'aderf',
          projection: gaussianOrthogonal(12, d, { seed: 1 }),
        });
        const q = tf.randomNormal([1, 2, 3, d], 0, 1, 'float32', 2);
        const v = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 2, 3, 1]);
        const out = await values(favorAttention(q, q, v, { featureMap: wide }));
        expect(
          out.every(
            (o, i) =>
              Number.isFinite(o) && o >= (i < 3 ? 1 : 4) - 1e-4 && o <= (i < 3 ? 3 : 6) + 1e-4,
          ),
        ).toBe(true);
      });
    });

    it('keyParts is wrong for stabilize: false: base·exp(logScale) + floor = features(k, "key"), and the step, the causal call and the blocked path agree', async () => {
      await scoped(async () => {
        const phi = positiveSoftmax({
          projection: gaussianOrthogonal(4, 2, { seed: 0 }),
          stabilize: false,
        });
        const k = tf.tensor2d([[0.5, 1]]);
        const parts = phi.keyParts!(k);
        const viaParts = tf.add(tf.mul(parts.base, tf.exp(parts.logScale)), parts.floor);
        expect(
          maxRelativeError(await values(viaParts), await values(phi.features(k, 'key'))),
        ).toBeLessThan(tolerance);
        const q = t4([
          [0.3, -0.2],
          [0.5, 1],
          [-1, 0.4],
          [0.2, 0.2],
        ]);
        const kk = t4([
          [0.5, 1],
          [0.1, -0.3],
          [1, 1],
          [-0.6, 0.2],
        ]);
        const v = t4([[1], [2], [4], [8]]);
        const causal = await values(favorAttention(q, kk, v, { featureMap: phi, causal: true }));
        expect(maxRelativeError((await stepped(phi, q, kk, v)).flat(), causal)).toBeLessThan(
          10 * tolerance,
        );
        const whole = await values(favorAttention(q, kk, v, { featureMap: phi }));
        const blocked = await values(
          favorAttention(q, kk, v, { featureMap: phi, featureBlockSize: 1 }),
        );
        expect(maxRelativeError(blocked, whole)).toBeLessThan(10 * tolerance);
      });
    });

    it('OPRF and the dense-exponential maps return all-zero output rows at logits of 10–20: they give the exact [1, 2]', async () => {
      await scoped(async () => {
        const projection = gaussianOrthogonal(16, 2, { seed: 0 });
        const q = t4([
          [30, 0],
          [0, 30],
        ]);
        const k = t4([
          [1, 0],
          [0, 1],
          [-1, 0],
        ]);
        const v = t4([[1], [2], [3]]);
        const exact = naiveSoftmaxAttention(
          (await q.array()) as Array4,
          (await k.array()) as Array4,
          (await v.array()) as Array4,
        ).flat(3);
        expect(exact[0]).toBeCloseTo(1, 5);
        expect(exact[1]).toBeCloseTo(2, 5);
        const variants = sync
          ? (['oprf', 'saderf', 'aderf', 'sderf'] as const)
          : (['oprf', 'saderf'] as const);
        for (const variant of variants) {
          const phi = denseExponentialSoftmax({ variant, projection });
          const out = await values(favorAttention(q, k, v, { featureMap: phi }));
          expect(Math.abs(out[0]! - 1), variant).toBeLessThan(1e-3);
          expect(Math.abs(out[1]! - 2), variant).toBeLessThan(1e-3);
        }
      });
    });

    it("rpeFavorAttention's FFT path returns noise where the answer is 0: exact zeros, and bias spreads of 90 do not underflow rows", async () => {
      await scoped(async () => {
        const L = 64;
        const phi = positiveSoftmax({ projection: gaussianOrthogonal(16, 4, { seed: 0 }) });
        const q = tf.randomNormal([1, 1, L, 4], 0, 1, 'float32', 1);
        const mask = tf.tensor2d([[0, ...new Array<number>(L - 1).fill(1)]]);
        const methods =
          sync && backend !== 'webgl' ? (['fft', 'toeplitz'] as const) : (['toeplitz'] as const);
        const outs: number[][] = [];
        for (const method of methods) {
          const out = await values(
            rpeFavorAttention(q, q, q, {
              featureMap: phi,
              relativeBias: tf.zeros([1, 2 * L - 1]),
              causal: true,
              mask,
              method,
            }),
          );
          for (const x of out.slice(0, 4)) expect(Math.abs(x)).toBe(0);
          outs.push(out);
        }
        if (outs.length === 2) expect(maxRelativeError(outs[0]!, outs[1]!)).toBeLessThan(1e-4);
        // a bias spread of ~90: no row underflows to zeros; the Float64 oracle agrees
        const Ls = 12;
        const qs = tf.randomNormal([1, 1, Ls, 4], 0, 0.5, 'float32', 3);
        const vs = tf.randomNormal([1, 1, Ls, 2], 0, 1, 'float32', 4);
        const bias = tf.tensor2d([Array.from({ length: 2 * Ls - 1 }, (_, r) => (r - Ls + 1) * 8)]); // −88 … +88
        const ref = naiveFavorAttention(
          (await qs.array()) as Array4,
          (await qs.array()) as Array4,
          (await vs.array()) as Array4,
          gaussianOrthogonal(16, 4, { seed: 0 }),
          {
            causal: true,
            eps: 1e-6,
            relativeBias: (await bias.array()) as number[][],
          },
        );
        for (const method of methods) {
          const out = await values(
            rpeFavorAttention(qs, qs, vs, {
              featureMap: phi,
              relativeBias: bias,
              causal: true,
              method,
            }),
          );
          expect(out.every(Number.isFinite)).toBe(true);
          expect(maxRelativeError(out, ref.flat(3)), method).toBeLessThan(1e-3);
        }
      });
    });
  });
}
