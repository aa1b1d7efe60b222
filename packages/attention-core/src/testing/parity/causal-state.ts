import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect } from 'vitest';
import { causalState, favorCausalStep, linearCausalStep } from '../../ops/causal-state.js';
import { favorAttention } from '../../ops/favor/favor-attention.js';
import { scoped } from '../backends.js';
import { rand4 } from '../inputs.js';
import { maxRelativeError, naiveCausalRecurrence } from '../reference.js';
import { arr, type ParityContext, positive4, read } from './helpers.js';

/** The parity cases of streaming (recurrent decoding) (see runParitySuite). */
export function causalStateParity({ tol, check }: ParityContext): void {
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
}
