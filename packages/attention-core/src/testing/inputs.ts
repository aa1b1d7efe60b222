import { createRng } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Relative tolerances by backend, from float precision: float32 with accumulations of O(100) terms
 * on CPU/WASM; GPU backends (float32 with fast-math, or float16 textures on some WebGL devices)
 * at 1e-3 as tfjs's own GPU tests use.
 */
export const TOLERANCES: Readonly<Record<string, number>> = {
  cpu: 2e-5,
  wasm: 2e-5,
  webgl: 1e-3,
  webgpu: 1e-3,
};

/**
 * Deterministic Gaussian values (our own PRNG, identical on every backend and machine).
 *
 * @param shape - the shape; the array holds their product of values
 * @param seed - seed of our PRNG
 * @param scale - standard deviation (default 1)
 */
export function randomArray(shape: number[], seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from(
    { length: shape.reduce((a, b) => a * b, 1) },
    () => scale * rng.normal(),
  );
}

/**
 * A rank-4 tensor of {@link randomArray} values.
 *
 * @param shape - [B, H, L, d]
 * @param seed - seed of our PRNG
 * @param scale - standard deviation (default 1)
 */
export function rand4(
  shape: [number, number, number, number],
  seed: number,
  scale = 1,
): tf.Tensor4D {
  return tf.tensor4d(randomArray(shape, seed, scale), shape);
}
