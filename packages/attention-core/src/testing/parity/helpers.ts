import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { randomArray } from '../inputs.js';
import type { Array4 } from '../reference.js';

/** What every op's parity cases get: the backend, its tolerance, and `check` (known gaps applied). */
export interface ParityContext {
  backend: string;
  tol: number;
  /** Defines one case: `it`, or `it.fails` with the reason where it is a recorded known gap. */
  check: (name: string, fn: () => void | Promise<void>) => void;
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
export function positive4(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  return tf.tensor4d(
    randomArray(shape, seed).map((x) => Math.abs(x) + 0.1),
    shape,
  );
}

export const arr = async (t: tf.Tensor) => (await t.array()) as Array4;
export const read = async (t: tf.Tensor) => Array.from(await t.data());

/** Runs `fn` and checks that it returns one tensor and leaves no other tensor behind. */
export function expectNoLeak<T extends tf.Tensor>(fn: () => T): T {
  const before = tf.memory().numTensors;
  const out = fn();
  expect(tf.memory().numTensors).toBe(before + 1);
  return out;
}
