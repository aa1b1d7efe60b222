import {
  denseExponentialSoftmax,
  generalized,
  hyperbolicSoftmax,
  positiveSoftmax,
  trigSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { bayesianAttention } from '../mechanisms/bayesian-attention.js';
import { combinerAttention } from '../mechanisms/combiner-attention.js';
import { gatedAttention, relaxedGates } from '../mechanisms/gated-attention.js';
import { lgammaNumber } from '../mechanisms/lgamma.js';
import { relationAwareAttention } from '../mechanisms/relation-aware-attention.js';
import { rpeFavorAttention } from '../mechanisms/rpe-favor-attention.js';
import { defaultToeplitzMethod, toeplitzMatmul } from '../mechanisms/toeplitz.js';
import { causalState, favorCausalStep, linearCausalStep } from '../ops/causal-state.js';
import { favorAttention } from '../ops/favor/favor-attention.js';
import { linearAttention } from '../ops/linear-attention.js';
import { softmaxAttention } from '../ops/softmax-attention.js';
import { scoped } from './backends.js';
import { rand4, randomArray, TOLERANCES } from './inputs.js';
import { runPropertySuite } from './property-suite.js';
import {
  type Array4,
  maxRelativeError,
  naiveCausalRecurrence,
  naiveCombinerAttention,
  naiveFavorAttention,
  naiveLinearAttention,
  naiveRelationAwareAttention,
  naiveSoftmaxAttention,
} from './reference.js';
import { runRegressionSuite } from './regression-suite.js';

/** A test that is known to fail on one backend, recorded with its reason (never silently skipped). */
export interface KnownGap {
  test: string;
  backend: string;
  reason: string;
}

export interface ParitySuiteOptions {
  /** The backend the suite expects to be active (it checks). */
  backend: string;
  tolerance?: number;
  knownGaps?: readonly KnownGap[];
  /** Cases per op of the property suite (default: KA_FUZZ_RUNS, else 200). */
  propertyRuns?: number;
}

/**
 * Checks tf.grads of `loss` at `inputs` against central finite differences (step h) at a few
 * entries of each input: |fd − g| < 2e-2·(1 + |fd|), a float32-sized tolerance for h = 1e-2.
 */
export async function expectGradientsMatchFiniteDifferences(
  loss: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor,
  inputs: [tf.Tensor, tf.Tensor, tf.Tensor],
  entries: (size: number) => number[],
  h = 1e-2,
): Promise<void> {
  const grads = tf.grads(loss)(inputs);
  for (const [which, x] of inputs.entries()) {
    const g = await read(grads[which]!);
    const base = await read(x);
    for (const idx of entries(x.size)) {
      const at = async (delta: number) => {
        const vals = Float32Array.from(base);
        vals[idx]! += delta;
        const args = inputs.map((t, j) => (j === which ? tf.tensor(vals, t.shape) : t));
        return (await read(loss(args[0]!, args[1]!, args[2]!)))[0]!;
      };
      const fd = ((await at(h)) - (await at(-h))) / (2 * h);
      expect(Math.abs(fd - g[idx]!)).toBeLessThan(2e-2 * (1 + Math.abs(fd)));
    }
  }
}

/** Positive features (for linear attention inputs): |N(0,1)| + 0.1. */
function positive4(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  return tf.tensor4d(
    randomArray(shape, seed).map((x) => Math.abs(x) + 0.1),
    shape,
  );
}

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const read = async (t: tf.Tensor) => Array.from(await t.data());

/** Runs `fn` and checks that it returns one tensor and leaves no other tensor behind. */
export function expectNoLeak<T extends tf.Tensor>(fn: () => T): T {
  const before = tf.memory().numTensors;
  const out = fn();
  expect(tf.memory().numTensors).toBe(before + 1);
  return out;
}

/**
 * The shared parity suite: every backend runs the same cases against the naive references —
 * bidirectional and causal linear attention, chunk-size invariance, the closed form, masks, odd
 * lengths, length 1, exact softmax attention, FAVOR+ end to end, streaming, gradients, extremes,
 * NaN propagation, leaks and bad input. Call it inside a vitest file with the backend active.
 *
 * @example
 * ```ts no-run: defines vitest suites (top level of a test file); every backend's parity.test.ts runs it
 * import { runParitySuite } from '@kernel-attention/core/testing/vitest';
 * runParitySuite({ backend: 'wasm' });
 * ```
 */
export function runParitySuite(opts: ParitySuiteOptions): void {
  const { backend } = opts;
  const tol = opts.tolerance ?? TOLERANCES[backend] ?? 1e-3;
  const gaps = new Map(
    (opts.knownGaps ?? []).filter((g) => g.backend === backend).map((g) => [g.test, g.reason]),
  );
  const check = (name: string, fn: () => void | Promise<void>) => {
    const reason = gaps.get(name);
    if (reason !== undefined) it.fails(`${name} [known gap on ${backend}: ${reason}]`, fn);
    else it(name, fn);
  };

  describe(`parity suite on ${backend}`, () => {
    it('runs on the requested backend', () => {
      expect(tf.getBackend()).toBe(backend);
    });

    runRegressionSuite({ backend, tolerance: tol });
    runPropertySuite({ backend, tolerance: tol, runs: opts.propertyRuns });

    describe('linearAttention', () => {
      for (const L of [1, 7, 33]) {
        check(`bidirectional equals the naive loop (L=${L})`, async () => {
          await scoped(async () => {
            const qf = positive4([2, 3, L, 5], 1);
            const kf = positive4([2, 3, L, 5], 2);
            const v = rand4([2, 3, L, 4], 3);
            const out = expectNoLeak(() => linearAttention(qf, kf, v));
            expect(out.shape).toEqual([2, 3, L, 4]);
            expect(
              maxRelativeError(
                await arr(out),
                naiveLinearAttention(await arr(qf), await arr(kf), await arr(v)),
              ),
            ).toBeLessThan(tol);
          });
        });
        check(
          `causal equals the naive per-step recurrence for every chunk size (L=${L})`,
          async () => {
            await scoped(async () => {
              const qf = positive4([1, 2, L, 6], 4);
              const kf = positive4([1, 2, L, 6], 5);
              const v = rand4([1, 2, L, 3], 6);
              const ref = naiveCausalRecurrence(await arr(qf), await arr(kf), await arr(v));
              expect(
                maxRelativeError(
                  naiveLinearAttention(await arr(qf), await arr(kf), await arr(v), {
                    causal: true,
                  }),
                  ref,
                ),
              ).toBeLessThan(1e-12);
              for (const chunkSize of [1, 2, 4, 7, 64]) {
                const out = expectNoLeak(() =>
                  linearAttention(qf, kf, v, { causal: true, chunkSize }),
                );
                expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
              }
            });
          },
        );
      }

      check('cross attention (Lq ≠ Lk), bidirectional', async () => {
        await scoped(async () => {
          const qf = positive4([1, 2, 5, 4], 7);
          const kf = positive4([1, 2, 9, 4], 8);
          const v = rand4([1, 2, 9, 3], 9);
          const out = linearAttention(qf, kf, v);
          expect(out.shape).toEqual([1, 2, 5, 3]);
          expect(
            maxRelativeError(
              await arr(out),
              naiveLinearAttention(await arr(qf), await arr(kf), await arr(v)),
            ),
          ).toBeLessThan(tol);
        });
      });

      check(
        'closed form: q = k = 1 gives the running mean of v (causal) and the mean (bidirectional)',
        async () => {
          await scoped(async () => {
            const L = 37;
            const ones = tf.ones([1, 1, L, 3]);
            const v = tf.reshape(tf.range(1, L + 1, 1, 'float32'), [1, 1, L, 1]);
            const causal = await read(
              linearAttention(ones, ones, v, { causal: true, chunkSize: 8 }),
            );
            for (const [i, x] of causal.entries())
              expect(Math.abs(x - (i + 2) / 2) / ((i + 2) / 2)).toBeLessThan(tol);
            const bi = await read(linearAttention(ones, ones, v));
            for (const x of bi) expect(Math.abs(x - (L + 1) / 2) / ((L + 1) / 2)).toBeLessThan(tol);
          });
        },
      );

      check('padding mask: padded keys count in neither numerator nor denominator', async () => {
        await scoped(async () => {
          const L = 11;
          const qf = positive4([2, 2, L, 4], 10);
          const kf = positive4([2, 2, L, 4], 11);
          const v = rand4([2, 2, L, 3], 12);
          const maskRows = [
            [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
            [0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0],
          ];
          const mask = tf.tensor2d(maskRows);
          for (const causal of [false, true]) {
            const out = expectNoLeak(() =>
              linearAttention(qf, kf, v, { causal, mask, chunkSize: 4 }),
            );
            const ref = naiveLinearAttention(await arr(qf), await arr(kf), await arr(v), {
              causal,
              mask: maskRows,
            });
            expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
            // garbage (NaN, Inf) in padded values changes nothing
            const bad = tf.where(
              tf.broadcastTo(tf.reshape(tf.equal(mask, 0), [2, 1, L, 1]), v.shape),
              tf.fill(v.shape, Number.NaN),
              v,
            );
            const badK = tf.where(
              tf.broadcastTo(tf.reshape(tf.equal(mask, 0), [2, 1, L, 1]), kf.shape),
              tf.fill(kf.shape, 1e30),
              kf,
            );
            expect(
              maxRelativeError(
                await arr(linearAttention(qf, badK, bad, { causal, mask, chunkSize: 4 })),
                ref,
              ),
            ).toBeLessThan(tol);
          }
        });
      });

      check('a query that sees no key gives 0, not NaN', async () => {
        await scoped(async () => {
          const qf = positive4([2, 1, 4, 3], 13);
          const v = rand4([2, 1, 4, 2], 14);
          const mask = tf.tensor2d([
            [0, 0, 0, 0],
            [0, 1, 1, 1],
          ]);
          for (const causal of [false, true]) {
            const out = await arr(linearAttention(qf, qf, v, { causal, mask }));
            expect(out[0]!.flat(2).every((x) => x === 0)).toBe(true);
            if (causal) expect(out[1]![0]![0]!.every((x) => x === 0)).toBe(true);
            expect(out.flat(3).every(Number.isFinite)).toBe(true);
          }
        });
      });

      check(
        'NaN in an unpadded value propagates (it is not hidden); earlier chunks stay finite',
        async () => {
          await scoped(async () => {
            const qf = positive4([1, 1, 4, 3], 15);
            const vals = randomArray([1, 1, 4, 2], 16);
            vals[2 * 2] = Number.NaN; // position 2, in the second chunk of size 2
            const v = tf.tensor4d(vals, [1, 1, 4, 2]);
            const out = (
              await arr(linearAttention(qf, qf, v, { causal: true, chunkSize: 2 }))
            )[0]![0]!;
            expect(out[0]!.concat(out[1]!).every(Number.isFinite)).toBe(true); // chunks before the NaN: unaffected
            expect(Number.isNaN(out[2]![0]!) && Number.isNaN(out[3]![0]!)).toBe(true); // from it on: NaN
            // bidirectional: every output sees position 2
            expect(
              (await arr(linearAttention(qf, qf, v)))[0]![0]!.every((row) => Number.isNaN(row[0]!)),
            ).toBe(true);
          });
        },
      );

      check('gradients match central finite differences (causal, chunked)', async () => {
        await scoped(async () => {
          const qf = positive4([1, 1, 6, 3], 17);
          const kf = positive4([1, 1, 6, 3], 18);
          const v = rand4([1, 1, 6, 2], 19);
          const w = rand4([1, 1, 6, 2], 20); // random linear read-out so that the loss is not degenerate
          const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            tf.sum(tf.mul(linearAttention(a, b, c, { causal: true, chunkSize: 4 }), w));
          await expectGradientsMatchFiniteDifferences(loss, [qf, kf, v], (n) => [0, 5, n - 1]);
        });
      });
    });

    describe('softmaxAttention', () => {
      for (const [L, causal] of [
        [1, false],
        [1, true],
        [9, false],
        [9, true],
        [40, true],
      ] as const) {
        check(`equals the naive reference (L=${L}, causal=${causal})`, async () => {
          await scoped(async () => {
            const q = rand4([2, 2, L, 8], 21);
            const k = rand4([2, 2, L, 8], 22);
            const v = rand4([2, 2, L, 5], 23);
            const out = expectNoLeak(() => softmaxAttention(q, k, v, { causal }));
            expect(
              maxRelativeError(
                await arr(out),
                naiveSoftmaxAttention(await arr(q), await arr(k), await arr(v), { causal }),
              ),
            ).toBeLessThan(tol);
          });
        });
      }
      check('padding mask and fully padded rows (0, finite)', async () => {
        await scoped(async () => {
          const q = rand4([2, 1, 6, 4], 24);
          const k = rand4([2, 1, 6, 4], 25);
          const v = rand4([2, 1, 6, 3], 26);
          const maskRows = [
            [1, 1, 1, 0, 0, 0],
            [0, 0, 1, 1, 1, 1],
          ];
          for (const causal of [false, true]) {
            const out = softmaxAttention(q, k, v, { causal, mask: tf.tensor2d(maskRows) });
            const ref = naiveSoftmaxAttention(await arr(q), await arr(k), await arr(v), {
              causal,
              mask: maskRows,
            });
            expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
            expect((await arr(out)).flat(3).every(Number.isFinite)).toBe(true);
          }
        });
      });
      check('huge scores stay finite (softmax is max-shifted)', async () => {
        await scoped(async () => {
          const q = rand4([1, 1, 5, 4], 27, 1e3);
          const out = softmaxAttention(q, q, rand4([1, 1, 5, 2], 28));
          expect((await read(out)).every(Number.isFinite)).toBe(true);
        });
      });
    });

    describe('favorAttention (FAVOR+ positive features)', () => {
      const d = 8;
      const m = 16;
      const w = gaussianOrthogonal(m, d, { seed: 5 });
      const eps = 1e-4;
      for (const [L, causal] of [
        [1, true],
        [13, false],
        [13, true],
        [70, true],
      ] as const) {
        check(
          `equals naive linear attention on Float64 positive features (L=${L}, causal=${causal})`,
          async () => {
            const phi = positiveSoftmax({ projection: w, eps });
            await scoped(async () => {
              const q = rand4([2, 2, L, d], 30, 0.7);
              const k = rand4([2, 2, L, d], 31, 0.7);
              const v = rand4([2, 2, L, 3], 32);
              favorAttention(q, k, v, { featureMap: phi, causal }); // warm the projection cache
              const out = expectNoLeak(() =>
                favorAttention(q, k, v, { featureMap: phi, causal, chunkSize: 8 }),
              );
              const ref = naiveFavorAttention(await arr(q), await arr(k), await arr(v), w, {
                causal,
                eps,
              });
              expect(maxRelativeError(await arr(out), ref)).toBeLessThan(10 * tol);
            });
            phi.dispose();
          },
        );
      }
      check(
        'gradients w.r.t. q, k and v match central finite differences (through φ and its stabilizers)',
        async () => {
          const phi = positiveSoftmax({ projection: w, eps });
          await scoped(async () => {
            const q = rand4([1, 1, 5, d], 38, 0.5);
            const k = rand4([1, 1, 5, d], 39, 0.5);
            const v = rand4([1, 1, 5, 2], 46);
            const r = rand4([1, 1, 5, 2], 47);
            for (const causal of [false, true]) {
              const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
                tf.sum(
                  tf.mul(favorAttention(a, b, c, { featureMap: phi, causal, chunkSize: 2 }), r),
                );
              await expectGradientsMatchFiniteDifferences(loss, [q, k, v], (n) => [1, 7, n - 2]);
            }
          });
          phi.dispose();
        },
      );
      check(
        'bidirectional results do not depend on featureBlockSize (blocked keys, running stabilizer)',
        async () => {
          const maps = [
            positiveSoftmax({ projection: w, eps }),
            hyperbolicSoftmax({ projection: w, eps }),
            trigSoftmax({ projection: w }),
            generalized({ projection: w, fn: 'relu' }), // no keyParts: position-local
          ];
          await scoped(async () => {
            const L = 11;
            const q = rand4([2, 2, L, d], 48, 0.8);
            const k = rand4([2, 2, L, d], 49, 0.8);
            const v = rand4([2, 2, L, 3], 50);
            const mask = tf.tensor2d([
              [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
              [0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1],
            ]);
            for (const featureMap of maps) {
              for (const m of [undefined, mask]) {
                const whole = favorAttention(q, k, v, { featureMap, mask: m });
                for (const featureBlockSize of [1, 3, 4, 10]) {
                  const blocked = expectNoLeak(() =>
                    favorAttention(q, k, v, { featureMap, mask: m, featureBlockSize }),
                  );
                  expect(maxRelativeError(await arr(blocked), await arr(whole))).toBeLessThan(tol);
                }
              }
            }
          });
          for (const m of maps) m.dispose();
        },
      );
      check('padded positions give the same result as the truncated sequence', async () => {
        const phi = positiveSoftmax({ projection: w, eps });
        await scoped(async () => {
          const L = 10;
          const keepLen = 6;
          const q = rand4([1, 2, L, d], 33);
          const k = rand4([1, 2, L, d], 34);
          const v = rand4([1, 2, L, 3], 35);
          const mask = tf.tensor2d([Array.from({ length: L }, (_, j) => (j < keepLen ? 1 : 0))]);
          const cut = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 0], [1, 2, keepLen, t.shape[3]!]);
          for (const causal of [false, true]) {
            const padded = favorAttention(q, k, v, { featureMap: phi, causal, mask });
            const truncated = favorAttention(cut(q), cut(k), cut(v), { featureMap: phi, causal });
            expect(maxRelativeError(await arr(cut(padded)), await arr(truncated))).toBeLessThan(
              tol,
            );
          }
        });
        phi.dispose();
      });
      check('inputs with norms up to 1e3 give finite outputs', async () => {
        const phi = positiveSoftmax({ projection: w });
        await scoped(async () => {
          for (const scale of [1e-6, 1, 1e2, 1e3]) {
            const q = rand4([1, 1, 9, d], 36, scale / Math.sqrt(d));
            for (const causal of [false, true]) {
              const out = favorAttention(q, q, rand4([1, 1, 9, 2], 37), {
                featureMap: phi,
                causal,
              });
              expect((await read(out)).every(Number.isFinite)).toBe(true);
            }
          }
        });
        phi.dispose();
      });
    });

    describe('streaming (recurrent decoding)', () => {
      check(
        'favorCausalStep gives, token by token, what the causal call gives on the same prefix',
        async () => {
          const d = 6;
          const phi = positiveSoftmax({
            projection: gaussianOrthogonal(12, d, { seed: 9 }),
            eps: 1e-4,
          });
          await scoped(async () => {
            const L = 9;
            const q = rand4([2, 2, L, d], 40, 0.8);
            const k = rand4([2, 2, L, d], 41, 0.8);
            const v = rand4([2, 2, L, 3], 42);
            let state = causalState({
              batch: 2,
              heads: 2,
              numFeatures: phi.numFeatures,
              valueDim: 3,
            });
            const tok = (t: tf.Tensor, i: number) =>
              tf.slice(t, [0, 0, i, 0], [2, 2, 1, t.shape[3]!]);
            const full = await arr(favorAttention(q, k, v, { featureMap: phi, causal: true }));
            for (let i = 0; i < L; i++) {
              const { output, state: next } = favorCausalStep(
                state,
                tok(q, i),
                tok(k, i),
                tok(v, i),
                { featureMap: phi },
              );
              state.dispose();
              state = next;
              const pre = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 0], [2, 2, i + 1, t.shape[3]!]);
              const prefix = favorAttention(pre(q), pre(k), pre(v), {
                featureMap: phi,
                causal: true,
              });
              const lastOfPrefix = tf.slice(prefix, [0, 0, i, 0], [2, 2, 1, 3]);
              expect(maxRelativeError(await arr(output), await arr(lastOfPrefix))).toBeLessThan(
                10 * tol,
              );
              // and the full-sequence causal call differs only through eps's relative size (key stabilizer)
              const fromFull = full.map((b) => b.map((h) => [h[i]!]));
              expect(maxRelativeError(await arr(output), fromFull)).toBeLessThan(1e-3);
            }
            expect(state.steps).toBe(L);
            // a padded token, even with NaN key and value, leaves the state as it was
            const nan = (last: number) => tf.fill([2, 2, 1, last], Number.NaN);
            const padded = favorCausalStep(state, tok(q, 0), nan(d), nan(3), {
              featureMap: phi,
              mask: tf.zeros([2, 1]),
            });
            expect(await read(padded.state.kv)).toEqual(await read(state.kv));
            expect((await read(padded.output)).every(Number.isFinite)).toBe(true);
            padded.state.dispose();
            state.dispose();
          });
          phi.dispose();
        },
      );
      check(
        'linearCausalStep equals the naive recurrence; a padded token leaves the state unchanged',
        async () => {
          await scoped(async () => {
            const L = 5;
            const qf = positive4([1, 1, L, 4], 43);
            const kf = positive4([1, 1, L, 4], 44);
            const v = rand4([1, 1, L, 2], 45);
            const ref = naiveCausalRecurrence(await arr(qf), await arr(kf), await arr(v));
            let state = causalState({ batch: 1, heads: 1, numFeatures: 4, valueDim: 2 });
            const tok = (t: tf.Tensor, i: number) =>
              tf.slice(t, [0, 0, i, 0], [1, 1, 1, t.shape[3]!]);
            for (let i = 0; i < L; i++) {
              const padded = linearCausalStep(state, tok(qf, i), tok(kf, i), tok(v, i), {
                mask: tf.tensor2d([[0]]),
              });
              expect(await read(padded.state.kv)).toEqual(await read(state.kv));
              const { output, state: next } = linearCausalStep(
                state,
                tok(qf, i),
                tok(kf, i),
                tok(v, i),
              );
              state = next;
              expect(maxRelativeError(await read(output), ref[0]![0]![i]!)).toBeLessThan(tol);
            }
          });
        },
      );
    });

    describe('rpeFavorAttention (relative positions, Toeplitz)', () => {
      const cpuSide = backend === 'cpu' || backend === 'wasm';
      for (const causal of [false, true]) {
        check(
          `equals the dense c_{j−i}·φ(q_i)·φ(k_j) reference, default method (causal=${causal}, padded)`,
          async () => {
            await scoped(async () => {
              const [B, H, L, d] = [2, 2, 70, 4];
              const phi = generalized({ fn: 'elu+1', inputDim: d });
              const q = rand4([B, H, L, d], 91);
              const k = rand4([B, H, L, d], 92);
              const v = rand4([B, H, L, 3], 93);
              const bias = randomArray([H, 2 * L - 1], 94, 0.5);
              const relativeBias = tf.tensor2d(bias, [H, 2 * L - 1]);
              const maskRows = [Array(L).fill(1), [...Array(L - 6).fill(1), ...Array(6).fill(0)]];
              const mask = tf.tensor2d(maskRows);
              const out = expectNoLeak(() =>
                rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, causal, mask }),
              );
              const ref = naiveLinearAttention(
                await arr(phi.features(q, 'query')),
                await arr(phi.features(k, 'key')),
                await arr(v),
                {
                  causal,
                  mask: maskRows,
                  relativeBias: (await relativeBias.array()) as number[][],
                },
              );
              expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
            });
          },
        );
      }

      check('relativeBias ≡ 0 gives favorAttention (causal)', async () => {
        await scoped(async () => {
          const phi = positiveSoftmax({ projection: gaussianOrthogonal(16, 8, { seed: 95 }) });
          const q = rand4([1, 2, 33, 8], 96, 0.5);
          const v = rand4([1, 2, 33, 2], 97);
          const relativeBias = tf.zeros([2, 65]);
          const a = rpeFavorAttention(q, q, v, { featureMap: phi, relativeBias, causal: true });
          const b = favorAttention(q, q, v, { featureMap: phi, causal: true });
          expect(maxRelativeError(await arr(a), await arr(b))).toBeLessThan(tol);
          phi.dispose();
        });
      });

      check(
        'toeplitzMatmul: both methods where the FFT runs, a clear error for it elsewhere',
        async () => {
          await scoped(async () => {
            const L = 9;
            const c = tf.tensor2d(randomArray([2, 2 * L - 1], 98), [2, 2 * L - 1]);
            const x = tf.tensor3d(randomArray([2, L, 3], 99), [2, L, 3]);
            const dense = expectNoLeak(() => toeplitzMatmul(c, x, { method: 'toeplitz' }));
            const [cv, xv] = [await read(c), await read(x)];
            const ref: number[] = [];
            for (let b = 0; b < 2; b++)
              for (let i = 0; i < L; i++)
                for (let col = 0; col < 3; col++) {
                  let acc = 0;
                  for (let j = 0; j < L; j++)
                    acc += cv[b * (2 * L - 1) + j - i + L - 1]! * xv[(b * L + j) * 3 + col]!;
                  ref.push(acc);
                }
            expect(maxRelativeError(await read(dense), ref)).toBeLessThan(tol);
            if (cpuSide) {
              const viaFft = expectNoLeak(() => toeplitzMatmul(c, x, { method: 'fft' }));
              expect(maxRelativeError(await read(viaFft), ref)).toBeLessThan(tol);
              expect(defaultToeplitzMethod(4096)).toBe('fft');
            } else {
              expect(() => toeplitzMatmul(c, x, { method: 'fft' })).toThrow(
                new RegExp(
                  `method 'fft' runs on the CPU side and needs the cpu or wasm backend, got '${backend}'`,
                ),
              );
              expect(defaultToeplitzMethod(4096)).toBe('toeplitz');
            }
          });
        },
      );

      check('gradients for the bias, q and v are finite and nonzero', async () => {
        await scoped(async () => {
          const phi = generalized({ fn: 'elu+1', inputDim: 4 });
          const q = rand4([1, 2, 12, 4], 100);
          const v = rand4([1, 2, 12, 2], 101);
          const b = tf.tensor2d(randomArray([2, 23], 102, 0.5), [2, 23]);
          const grads = tf.grads((qq: tf.Tensor, vv: tf.Tensor, bb: tf.Tensor) =>
            tf.sum(
              tf.square(
                rpeFavorAttention(qq, qq, vv, { featureMap: phi, relativeBias: bb, causal: true }),
              ),
            ),
          )([q, v, b]);
          for (const g of grads) {
            const values = await read(g);
            expect(values.every(Number.isFinite)).toBe(true);
            expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0);
          }
        });
      });
    });

    describe('combinerAttention', () => {
      for (const variant of ['fixed', 'axial', 'logsparse', 'mixture'] as const) {
        check(
          `${variant}: equals the naive plan reference, causal and bidirectional (L = 21, padded)`,
          async () => {
            await scoped(async () => {
              const L = 21;
              const q = rand4([2, 2, L, 4], 111);
              const k = rand4([2, 2, L, 4], 112);
              const v = rand4([2, 2, L, 3], 113);
              const maskRows = [
                Array(L).fill(1),
                Array.from({ length: L }, (_, j) => (j % 4 === 1 ? 0 : 1)),
              ];
              const mask = tf.tensor2d(maskRows);
              for (const causal of [false, true]) {
                const out = expectNoLeak(() =>
                  combinerAttention(q, k, v, { variant, causal, blockSize: 5, mask }),
                );
                const ref = naiveCombinerAttention(await arr(q), await arr(k), await arr(v), {
                  variant,
                  blockSize: 5,
                  causal,
                  mask: maskRows,
                });
                expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
              }
            });
          },
        );
      }
    });

    describe('persistent memory', () => {
      /** [M; X]: the [H, N, ·] memory repeated for each batch item, before the context. */
      const joined = (m: tf.Tensor, x: tf.Tensor) =>
        tf.concat([tf.broadcastTo(tf.expandDims(m, 0), [x.shape[0]!, ...m.shape]), x], 2);
      check(
        'softmax and FAVOR+ with memory slots equal the naive references (every query sees the memory)',
        async () => {
          const [L, N, d] = [19, 3, 8];
          const w = gaussianOrthogonal(16, d, { seed: 120 });
          const phi = positiveSoftmax({ projection: w, eps: 1e-4 });
          await scoped(async () => {
            const q = rand4([2, 2, L, d], 121, 0.6);
            const k = rand4([2, 2, L, d], 122, 0.6);
            const v = rand4([2, 2, L, 3], 123);
            const memory = {
              keys: tf.tensor3d(randomArray([2, N, d], 124, 0.6), [2, N, d]),
              values: tf.tensor3d(randomArray([2, N, 3], 125), [2, N, 3]),
            };
            const maskRows = [
              Array(L).fill(1),
              Array.from({ length: L }, (_, j) => (j > 15 ? 0 : 1)),
            ];
            const mask = tf.tensor2d(maskRows);
            const [kj, vj] = [
              await arr(joined(memory.keys, k)),
              await arr(joined(memory.values, v)),
            ];
            favorAttention(q, k, v, { featureMap: phi }); // warm the projection cache
            for (const causal of [false, true]) {
              const out = expectNoLeak(() => softmaxAttention(q, k, v, { causal, mask, memory }));
              const ref = naiveSoftmaxAttention(await arr(q), kj, vj, {
                causal,
                memory: N,
                mask: maskRows.map((r) => [...Array(N).fill(1), ...r]),
              });
              expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
              const fav = expectNoLeak(() =>
                favorAttention(q, k, v, { featureMap: phi, causal, memory, chunkSize: 8 }),
              );
              const favRef = naiveFavorAttention(await arr(q), kj, vj, w, {
                causal,
                memory: N,
                eps: 1e-4,
              });
              expect(maxRelativeError(await arr(fav), favRef)).toBeLessThan(10 * tol);
            }
          });
          phi.dispose();
        },
      );
    });

    describe('gatedAttention', () => {
      check(
        'hard gates equal attention over the open keys; relaxed gates weight keys by g (softmax and FAVOR+)',
        async () => {
          const [L, d] = [17, 6];
          const w = gaussianOrthogonal(16, d, { seed: 130 });
          const phi = positiveSoftmax({ projection: w, eps: 1e-4 });
          await scoped(async () => {
            const q = rand4([2, 2, L, d], 131, 0.6);
            const k = rand4([2, 2, L, d], 132, 0.6);
            const v = rand4([2, 2, L, 3], 133);
            const p = Array.from({ length: 2 }, (_, b) =>
              Array.from({ length: L }, (_, j) => ((b * 7 + j * 5) % 11) / 10),
            );
            const gates = tf.tensor2d(p);
            favorAttention(q, k, v, { featureMap: phi }); // warm the projection cache
            const [qa, ka, va] = [await arr(q), await arr(k), await arr(v)];
            for (const causal of [false, true]) {
              // hard: keys with p > 1/2 only — the reference masks the others
              const open = p.map((row) => row.map((x) => (x > 0.5 ? 1 : 0)));
              const hard = expectNoLeak(() =>
                gatedAttention(q, k, v, { gates, mode: 'hard', causal }),
              );
              const ref = naiveSoftmaxAttention(qa, ka, va, { causal, mask: open });
              expect(maxRelativeError(await arr(hard), ref)).toBeLessThan(tol);
              // relaxed with FAVOR+: key features scaled by the sampled gates
              const g = (await relaxedGates(gates, 0.5, 9).array()) as number[][];
              const soft = expectNoLeak(() =>
                gatedAttention(q, k, v, {
                  gates,
                  mode: 'relaxed',
                  seed: 9,
                  causal,
                  featureMap: phi,
                }),
              );
              const softRef = naiveFavorAttention(qa, ka, va, w, {
                causal,
                eps: 1e-4,
                keyWeights: g,
              });
              expect(maxRelativeError(await arr(soft), softRef)).toBeLessThan(10 * tol);
            }
          });
          phi.dispose();
        },
      );
    });

    describe('relationAwareAttention', () => {
      check(
        'equals the naive [L, L, d] form (per-pair relation ids, padding, causal and bidirectional)',
        async () => {
          const [L, d, R] = [11, 4, 4];
          await scoped(async () => {
            const q = rand4([2, 2, L, d], 141, 0.7);
            const k = rand4([2, 2, L, d], 142, 0.7);
            const v = rand4([2, 2, L, 3], 143);
            const ids = Array.from({ length: 2 }, (_, b) =>
              Array.from({ length: L }, (_, i) =>
                Array.from({ length: L }, (_, j) => (b + 3 * i + 5 * j) % R),
              ),
            );
            const relations = tf.tensor3d(ids, [2, L, L], 'int32');
            const relationKeys = tf.tensor2d(randomArray([R, d], 144, 0.7), [R, d]);
            const relationValues = tf.tensor2d(randomArray([R, 3], 145), [R, 3]);
            const maskRows = [
              Array(L).fill(1),
              Array.from({ length: L }, (_, j) => (j > 7 ? 0 : 1)),
            ];
            const mask = tf.tensor2d(maskRows);
            for (const causal of [false, true]) {
              const out = expectNoLeak(() =>
                relationAwareAttention(q, k, v, {
                  relations,
                  relationKeys,
                  relationValues,
                  mask,
                  causal,
                }),
              );
              const ref = naiveRelationAwareAttention(
                await arr(q),
                await arr(k),
                await arr(v),
                ids,
                (await relationKeys.array()) as number[][],
                (await relationValues.array()) as number[][],
                { causal, mask: maskRows },
              );
              expect(maxRelativeError(await arr(out), ref)).toBeLessThan(tol);
            }
          });
        },
      );
    });

    describe('bayesianAttention', () => {
      check(
        'inference equals naive softmax attention; samples with a large Weibull shape approach it; KL as in Float64',
        async () => {
          const [L, d] = [12, 4];
          await scoped(async () => {
            const q = rand4([2, 2, L, d], 151, 0.8);
            const k = rand4([2, 2, L, d], 152, 0.8);
            const v = rand4([2, 2, L, 3], 153);
            const maskRows = [
              Array(L).fill(1),
              Array.from({ length: L }, (_, j) => (j > 8 ? 0 : 1)),
            ];
            const mask = tf.tensor2d(maskRows);
            const [qa, ka, va] = [await arr(q), await arr(k), await arr(v)];
            for (const causal of [false, true]) {
              const det = bayesianAttention(q, k, v, { training: false, causal, mask });
              const ref = naiveSoftmaxAttention(qa, ka, va, { causal, mask: maskRows });
              expect(maxRelativeError(await arr(det.output), ref)).toBeLessThan(tol);
              const noisy = bayesianAttention(q, k, v, {
                training: true,
                shape: 1e4,
                seed: 1,
                causal,
                mask,
              });
              expect(maxRelativeError(await arr(noisy.output), ref)).toBeLessThan(1e-3);
              // the KL in Float64 from the same scores (α = β = 1, k = 10)
              let want = 0;
              for (const [b, qb] of qa.entries()) {
                for (const [h, qh] of qb.entries()) {
                  for (const [i, qi] of qh.entries()) {
                    const kh = ka[b]![h]!;
                    const vis = kh.map((_, j) => (!causal || j <= i) && maskRows[b]![j] !== 0);
                    const s = kh.map(
                      (kj) => kj.reduce((a, x, t) => a + x * qi[t]!, 0) / Math.sqrt(d),
                    );
                    const m = Math.max(...s.filter((_, j) => vis[j]));
                    for (const [j, sj] of s.entries()) {
                      if (!vis[j]) continue;
                      const logLambda = sj - m - lgammaNumber(1.1);
                      want +=
                        0.5772156649015329 / 10 -
                        logLambda +
                        Math.log(10) +
                        Math.exp(sj - m) -
                        0.5772156649015329 -
                        1;
                    }
                  }
                }
              }
              const got = (await det.kl.data())[0]!;
              expect(Math.abs(got - want / 2)).toBeLessThan(10 * tol * (1 + Math.abs(want / 2)));
            }
          });
        },
      );
    });

    describe('data-dependent feature maps (FAVOR++, dense-exponential)', () => {
      for (const variant of ['oprf', 'saderf', 'aderf', 'sderf'] as const) {
        check(
          `${variant}: favorAttention fits the map per call and equals linear attention on the fitted features`,
          async () => {
            const [L, d] = [14, 6];
            const w = gaussianOrthogonal(24, d, { seed: 160 });
            const phi = denseExponentialSoftmax({ variant, projection: w });
            await scoped(async () => {
              const q = rand4([1, 2, L, d], 161, 0.8);
              const k = rand4([1, 2, L, d], 162, 0.8);
              const v = rand4([1, 2, L, 3], 163);
              const cpuOnly = variant === 'aderf' || variant === 'sderf';
              if (cpuOnly && backend === 'webgpu') {
                // the d×d eigen-fits need synchronous reads, which tfjs-webgpu lacks: a clear error
                expect(() => favorAttention(q, k, v, { featureMap: phi })).toThrow(
                  /needs synchronous reads, which tfjs-webgpu does not offer/,
                );
                return;
              }
              const out = favorAttention(q, k, v, { featureMap: phi });
              const flat = (x: tf.Tensor) => tf.reshape(x, [2, L, x.shape[3]!]);
              const fitted = phi.prepare!(flat(q), flat(k), null);
              const qf = tf.reshape(fitted.features(flat(q), 'query'), [1, 2, L, 24]);
              const kf = tf.reshape(fitted.features(flat(k), 'key'), [1, 2, L, 24]);
              const ref = naiveLinearAttention(await arr(qf), await arr(kf), await arr(v));
              expect(maxRelativeError(await arr(out), ref)).toBeLessThan(10 * tol);
              fitted.dispose();
            });
            phi.dispose();
          },
        );
      }
    });

    describe('bad input', () => {
      const q = () => tf.zeros([1, 2, 3, 4]);
      check(
        'wrong rank, mismatched shapes, wrong mask shape and wrong dtype name the argument and the shapes',
        async () => {
          await scoped(async () => {
            const phi = positiveSoftmax({ projection: gaussianOrthogonal(4, 4, { seed: 1 }) });
            const v = tf.zeros([1, 2, 3, 5]);
            expect(() => softmaxAttention(tf.zeros([2, 3, 4]), q(), v)).toThrow(
              'softmaxAttention: q must be a rank-4 tensor [batch, heads, length, dim], got shape [2,3,4]',
            );
            expect(() =>
              favorAttention(q(), tf.zeros([1, 3, 3, 4]), v, { featureMap: phi }),
            ).toThrow(
              'favorAttention: q and k must agree in batch and heads, got q [1,2,3,4] and k [1,3,3,4]',
            );
            expect(() =>
              favorAttention(q(), tf.zeros([1, 2, 3, 6]), v, { featureMap: phi }),
            ).toThrow(
              'favorAttention: q and k must have the same last dimension, got q [1,2,3,4] and k [1,2,3,6]',
            );
            expect(() => linearAttention(q(), q(), tf.zeros([1, 2, 4, 5]))).toThrow(
              'linearAttention: v must agree with kFeat in batch, heads and length, got kFeat [1,2,3,4] and v [1,2,4,5]',
            );
            expect(() =>
              favorAttention(q(), q(), v, { featureMap: phi, mask: tf.ones([1, 4]) }),
            ).toThrow('favorAttention: mask must have shape [batch, keyLength] = [1,3], got [1,4]');
            expect(() => softmaxAttention(q(), q(), tf.zeros([1, 2, 3, 5], 'int32'))).toThrow(
              'softmaxAttention: v must have dtype float32, got int32 (shape [1,2,3,5])',
            );
            expect(() =>
              favorAttention(q(), tf.zeros([1, 2, 5, 4]), tf.zeros([1, 2, 5, 5]), {
                featureMap: phi,
                causal: true,
              }),
            ).toThrow(
              'favorAttention: causal attention needs as many queries as keys, got q [1,2,3,4] and k [1,2,5,4]',
            );
            expect(() => linearAttention(q(), q(), v, { causal: true, chunkSize: 0 })).toThrow(
              'linearAttention: chunkSize must be a positive integer, got 0',
            );
            // @ts-expect-error runtime check of a JS caller
            expect(() => favorAttention(q(), q(), v, {})).toThrow(
              /featureMap must implement FeatureMap/,
            );
            phi.dispose();
          });
        },
      );
    });
  });
}
