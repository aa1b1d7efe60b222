import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  type Array4,
  maxRelativeError,
  naiveCombinerAttention,
  naiveSoftmaxAttention,
  rand4,
} from '../testing/suites.js';
import { type CombinerVariant, combinerAttention } from './combiner-attention.js';

const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
const variants: CombinerVariant[] = ['fixed', 'axial', 'logsparse', 'mixture'];

describe('combinerAttention', () => {
  const cases = variants.flatMap((variant) =>
    [false, true].flatMap((causal) =>
      (['max', 'mean'] as const).map((pooling) => ({ variant, causal, pooling })),
    ),
  );
  it.each(cases)(
    'equals the naive plan reference: $variant, causal=$causal, $pooling pooling (L = 37, s = 6, padded)',
    async ({ variant, causal, pooling }) => {
      const [B, H, L, d] = [2, 2, 37, 4];
      const q = rand4([B, H, L, d], 1);
      const k = rand4([B, H, L, d], 2);
      const v = rand4([B, H, L, 3], 3);
      const maskRows = [
        Array(L).fill(1),
        Array.from({ length: L }, (_, j) => (j % 5 === 3 || j > 33 ? 0 : 1)),
      ];
      const mask = tf.tensor2d(maskRows);
      const before = tf.memory().numTensors;
      const out = combinerAttention(q, k, v, { variant, causal, pooling, blockSize: 6, mask });
      expect(tf.memory().numTensors).toBe(before + 1);
      const ref = naiveCombinerAttention(await arr(q), await arr(k), await arr(v), {
        variant,
        blockSize: 6,
        causal,
        pooling,
        mask: maskRows,
      });
      expect(maxRelativeError(await arr(out), ref)).toBeLessThan(1e-5);
      tf.dispose([q, k, v, mask, out]);
    },
  );

  it.each(['fixed', 'axial'] as const)(
    '%s with blockSize = L is exact softmax attention',
    async (variant) => {
      const q = rand4([1, 2, 20, 4], 4);
      const k = rand4([1, 2, 20, 4], 5);
      const v = rand4([1, 2, 20, 3], 6);
      for (const causal of [false, true]) {
        const out = combinerAttention(q, k, v, { variant, causal, blockSize: 20 });
        const ref = naiveSoftmaxAttention(await arr(q), await arr(k), await arr(v), { causal });
        expect(maxRelativeError(await arr(out), ref)).toBeLessThan(1e-5);
        out.dispose();
      }
      tf.dispose([q, k, v]);
    },
  );

  /** The effective attention matrix of one head: outputs for V = identity. */
  async function readout(variant: CombinerVariant, causal: boolean, L: number, mask?: number[]) {
    const q = rand4([1, 1, L, 4], 7);
    const k = rand4([1, 1, L, 4], 8);
    const eye = tf.reshape(tf.eye(L), [1, 1, L, L]);
    const m = mask ? tf.tensor2d([mask]) : undefined;
    const a = combinerAttention(q, k, eye, { variant, causal, blockSize: 5, mask: m });
    const rows = (await a.array())[0]![0]!;
    tf.dispose([q, k, eye, a, ...(m ? [m] : [])]);
    return rows;
  }

  it.each(variants.flatMap((variant) => [false, true].map((causal) => ({ variant, causal }))))(
    'readout ($variant, causal=$causal): rows sum to 1, positive on the allowed support, exactly 0 elsewhere',
    async ({ variant, causal }) => {
      const L = 23;
      const mask = Array.from({ length: L }, (_, j) => (j === 4 || j === 17 ? 0 : 1));
      const A = await readout(variant, causal, L, mask);
      for (let i = 0; i < L; i++) {
        expect(A[i]!.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
        for (let j = 0; j < L; j++) {
          const allowed = (!causal || j <= i) && mask[j] === 1;
          if (allowed) expect(A[i]![j]).toBeGreaterThan(0);
          else expect(A[i]![j]).toBe(0);
        }
      }
    },
  );

  it('off-span blocks have rank one (fixed, bidirectional)', async () => {
    const L = 20;
    const A = await readout('fixed', false, L); // blockSize 5: segments of 5
    // queries of segment 0 against the keys of segment 2: every 2×2 minor vanishes
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < 5; i++)
      for (let i2 = 0; i2 < 5; i2++)
        for (let j = 10; j < 15; j++)
          for (let j2 = 10; j2 < 15; j2++) {
            worst = Math.max(worst, Math.abs(A[i]![j]! * A[i2]![j2]! - A[i]![j2]! * A[i2]![j]!));
            scale = Math.max(scale, A[i]![j]! * A[i2]![j2]!);
          }
    expect(worst).toBeLessThan(1e-5 * scale);
    // …while a direct block (the own segment) is not rank one
    const minor = A[0]![0]! * A[1]![1]! - A[0]![1]! * A[1]![0]!;
    expect(Math.abs(minor)).toBeGreaterThan(1e-3 * A[0]![0]! * A[1]![1]!);
  });

  it.each(variants)(
    '%s causal: changing future tokens never changes past outputs',
    async (variant) => {
      const [L, cut] = [30, 17];
      const q = rand4([1, 2, L, 4], 9);
      const v = rand4([1, 2, L, 3], 10);
      const q2 = tf.concat(
        [tf.slice(q, [0, 0, 0, 0], [1, 2, cut, 4]), rand4([1, 2, L - cut, 4], 11, 4)],
        2,
      );
      const v2 = tf.concat(
        [tf.slice(v, [0, 0, 0, 0], [1, 2, cut, 3]), rand4([1, 2, L - cut, 3], 12, 4)],
        2,
      );
      const a = combinerAttention(q, q, v, { variant, causal: true, blockSize: 4 });
      const b = combinerAttention(q2, q2, v2, { variant, causal: true, blockSize: 4 });
      const head = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 0], [1, 2, cut, 3]);
      expect(maxRelativeError(await arr(head(a)), await arr(head(b)))).toBe(0);
      tf.dispose([q, v, q2, v2, a, b]);
    },
  );

  it.each(variants)('%s: gradients for q, k and v are finite and nonzero', async (variant) => {
    const q = rand4([1, 1, 18, 4], 13);
    const k = rand4([1, 1, 18, 4], 14);
    const v = rand4([1, 1, 18, 2], 15);
    for (const pooling of ['max', 'mean'] as const) {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.square(combinerAttention(a, b, c, { variant, causal: true, pooling }))),
      )([q, k, v]);
      for (const g of grads) {
        const x = await g.data();
        expect(x.every(Number.isFinite)).toBe(true);
        expect(Math.max(...Array.from(x, Math.abs))).toBeGreaterThan(0);
      }
      tf.dispose(grads);
    }
    tf.dispose([q, k, v]);
  });

  it('rejects bad input with the argument, what it got and what was expected', () => {
    const q = tf.zeros([1, 2, 9, 4]);
    expect(() => combinerAttention(q, q, q, { variant: 'sparse' as CombinerVariant })).toThrow(
      /variant must be 'fixed', 'axial', 'logsparse' or 'mixture', got "sparse"/,
    );
    expect(() => combinerAttention(q, q, q, { variant: 'fixed', blockSize: 0 })).toThrow(
      /blockSize must be an integer in \[1, L = 9\], got 0/,
    );
    expect(() => combinerAttention(q, q, q, { variant: 'fixed', blockSize: 2.5 })).toThrow(
      /blockSize/,
    );
    expect(() => combinerAttention(q, q, q, { variant: 'fixed', pooling: 'sum' as 'max' })).toThrow(
      /pooling must be 'max' or 'mean', got "sum"/,
    );
    const k = tf.zeros([1, 2, 8, 4]);
    expect(() => combinerAttention(q, k, k, { variant: 'fixed' })).toThrow(
      /as many queries as keys/,
    );
    expect(() => combinerAttention(q, q, q, { variant: 'fixed', mask: tf.ones([1, 8]) })).toThrow(
      /mask/,
    );
    expect(() => combinerAttention(q, q, q, undefined as never)).toThrow(
      /options \{ variant \} are required/,
    );
    tf.dispose([q, k]);
  });
});
