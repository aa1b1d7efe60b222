import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { softmaxAttention } from '../ops/softmax-attention.js';
import {
  type Array4,
  expectGradientsMatchFiniteDifferences,
  expectNoLeak,
  maxRelativeError,
  naiveRelationAwareAttention,
  rand4,
  randomArray,
} from '../testing/suites.js';
import { clippedRelativePositions, relationAwareAttention } from './relation-aware-attention.js';

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const [B, H, L, d, dv, R] = [2, 2, 13, 6, 3, 5];
const inputs = () => ({
  q: rand4([B, H, L, d], 1, 0.7),
  k: rand4([B, H, L, d], 2, 0.7),
  v: rand4([B, H, L, dv], 3),
  relationKeys: tf.tensor2d(randomArray([R, d], 4, 0.7), [R, d]),
  relationValues: tf.tensor2d(randomArray([R, dv], 5), [R, dv]),
});
/** RAT-SQL style: arbitrary relation ids per (batch, i, j) */
const relIds = (seed: number) =>
  Array.from({ length: B }, (_, b) =>
    Array.from({ length: L }, (_, i) =>
      Array.from({ length: L }, (_, j) => (b * 3 + i * 7 + j * 11 + seed) % R),
    ),
  );
const maskRows = [Array(L).fill(1), [...Array(L - 4).fill(1), ...Array(4).fill(0)]];

describe('relationAwareAttention', () => {
  it.each([false, true])(
    'equals the naive [L, L, d] form (RAT-SQL ids, padding, causal=%s)',
    async (causal) => {
      const x = inputs();
      const ids = relIds(1);
      const relations = tf.tensor3d(ids, [B, L, L], 'int32');
      const mask = tf.tensor2d(maskRows);
      const out = expectNoLeak(() =>
        relationAwareAttention(x.q, x.k, x.v, { ...x, relations, mask, causal }),
      );
      const ref = naiveRelationAwareAttention(
        await arr(x.q),
        await arr(x.k),
        await arr(x.v),
        ids,
        (await x.relationKeys.array()) as number[][],
        (await x.relationValues.array()) as number[][],
        { causal, mask: maskRows },
      );
      expect(maxRelativeError(await arr(out), ref)).toBeLessThan(2e-5);
      tf.dispose([...Object.values(x), relations, mask, out]);
    },
  );

  it('zero relation embeddings give exact attention', async () => {
    const x = inputs();
    const relations = tf.tensor3d(relIds(2), [B, L, L], 'int32');
    const mask = tf.tensor2d(maskRows);
    for (const causal of [false, true]) {
      const out = relationAwareAttention(x.q, x.k, x.v, {
        relations,
        relationKeys: tf.zeros([R, d]),
        relationValues: tf.zeros([R, dv]),
        mask,
        causal,
      });
      const ref = softmaxAttention(x.q, x.k, x.v, { mask, causal });
      expect(maxRelativeError(await arr(out), await arr(ref))).toBeLessThan(2e-5);
    }
    tf.dispose([...Object.values(x), relations, mask]);
  });

  it('jointly permuting positions and the relation matrix permutes the outputs', async () => {
    const x = inputs();
    const ids = relIds(3);
    const perm = [4, 0, 12, 7, 1, 9, 3, 11, 2, 10, 5, 8, 6];
    const P = tf.tensor1d(perm, 'int32');
    const permuted = ids.map((rows) => perm.map((pi) => perm.map((pj) => rows[pi]![pj]!)));
    const take = (t: tf.Tensor) => tf.gather(t, P, 2);
    const a = relationAwareAttention(x.q, x.k, x.v, {
      ...x,
      relations: tf.tensor3d(ids, [B, L, L], 'int32'),
    });
    const b = relationAwareAttention(take(x.q), take(x.k), take(x.v), {
      ...x,
      relations: tf.tensor3d(permuted, [B, L, L], 'int32'),
    });
    expect(maxRelativeError(await arr(b), await arr(take(a)))).toBeLessThan(2e-5);
    // and the relations matter: the unpermuted relation matrix gives something else
    const c = relationAwareAttention(take(x.q), take(x.k), take(x.v), {
      ...x,
      relations: tf.tensor3d(ids, [B, L, L], 'int32'),
    });
    expect(maxRelativeError(await arr(c), await arr(take(a)))).toBeGreaterThan(1e-2);
    tf.dispose([...Object.values(x), P, a, b, c]);
  });

  it('clippedRelativePositions gives Shaw et al.’s ids, shared by the batch as [L, L]', async () => {
    const ids = clippedRelativePositions(6, 2);
    expect(ids.dtype).toBe('int32');
    expect(await ids.array()).toEqual([
      [2, 3, 4, 4, 4, 4],
      [1, 2, 3, 4, 4, 4],
      [0, 1, 2, 3, 4, 4],
      [0, 0, 1, 2, 3, 4],
      [0, 0, 0, 1, 2, 3],
      [0, 0, 0, 0, 1, 2],
    ]);
    expect(await clippedRelativePositions(3, 0).array()).toEqual([
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ]);
    const x = inputs();
    const shared = clippedRelativePositions(L, 2);
    const a = relationAwareAttention(x.q, x.k, x.v, { ...x, relations: shared });
    const b = relationAwareAttention(x.q, x.k, x.v, {
      ...x,
      relations: tf.stack([shared, shared]),
    });
    expect(await a.data()).toEqual(await b.data());
    expect(() => clippedRelativePositions(0, 2)).toThrow(
      /length must be a positive integer, got 0/,
    );
    expect(() => clippedRelativePositions(4, -1)).toThrow(
      /maxDistance must be an integer >= 0, got -1/,
    );
    tf.dispose([ids, shared, a, b, ...Object.values(x)]);
  });

  it('gradients w.r.t. q, the relation keys and the relation values match finite differences', async () => {
    const q = rand4([1, 1, 5, 3], 21, 0.7);
    const k = rand4([1, 1, 5, 3], 22, 0.7);
    const v = rand4([1, 1, 5, 2], 23);
    const r = rand4([1, 1, 5, 2], 24);
    const relations = clippedRelativePositions(5, 1);
    const aK = tf.tensor2d(randomArray([3, 3], 25, 0.7), [3, 3]);
    const aV = tf.tensor2d(randomArray([3, 2], 26), [3, 2]);
    for (const causal of [false, true]) {
      const loss = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
        tf.sum(
          tf.mul(
            relationAwareAttention(qq, k, v, {
              relations,
              relationKeys: kk,
              relationValues: vv,
              causal,
            }),
            r,
          ),
        );
      await expectGradientsMatchFiniteDifferences(loss, [q, aK, aV], (n) => [
        0,
        Math.floor(n / 2),
        n - 1,
      ]);
    }
    tf.dispose([q, k, v, r, relations, aK, aV]);
  });

  it('rejects relation ids out of range and mismatched shapes, naming them', () => {
    const x = inputs();
    const call = (o: object) => () =>
      relationAwareAttention(x.q, x.k, x.v, {
        ...x,
        relations: clippedRelativePositions(L, 2),
        ...o,
      } as never);
    expect(call({ relations: tf.fill([B, L, L], R, 'int32') })).toThrow(
      /relation ids must lie in \[0, 5\) \(relationKeys has 5 rows\), got ids from 5 to 5/,
    );
    expect(call({ relations: tf.fill([B, L, L], -1, 'int32') })).toThrow(/got ids from -1 to -1/);
    expect(call({ relations: tf.zeros([B, L, L]) })).toThrow(/relations must have dtype int32/);
    expect(call({ relations: tf.zeros([B, L, L + 1], 'int32') })).toThrow(
      /relations must have shape \[batch, queryLength, keyLength\] = \[2,13,13\] \(or \[13,13\] for the whole batch\), got \[2,13,14\]/,
    );
    expect(call({ relationKeys: tf.zeros([R, d + 1]) })).toThrow(
      /relationKeys must be \[R, d\] = \[R,6\] and relationValues \[R, dv\] = \[R,3\] with one R, got relationKeys \[5,7\]/,
    );
    expect(call({ relationValues: tf.zeros([R + 1, dv]) })).toThrow(/relationValues \[6,3\]/);
    expect(call({ relations: undefined })).toThrow(/relations must be a tf.Tensor, got undefined/);
    tf.dispose(Object.values(x));
  });
});
