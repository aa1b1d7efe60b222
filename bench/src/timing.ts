/** Timing and data helpers shared by the benches. */
import { createRng } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';

/** Median wall time (ms) of `runs` calls of an async step. */
export async function medianMs(
  step: () => Promise<unknown> | unknown,
  runs: number,
): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

/** Median wall time (ms) of a tensor op, each call waited for (its data read) and freed. */
export function medianTensorMs(f: () => tf.Tensor, runs: number): Promise<number> {
  return medianMs(async () => {
    const out = f();
    await out.data();
    out.dispose();
  }, runs);
}

/** A [B, H, L, d] tensor of scale·N(0, 1) entries from our own PRNG (the same on every machine). */
export function gaussian(
  shape: [number, number, number, number],
  seed: number,
  scale: number,
): tf.Tensor4D {
  const rng = createRng(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = scale * rng.normal();
  return tf.tensor4d(data, shape);
}
