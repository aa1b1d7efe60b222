// Shared by the backend packages' tests (see runFusedFeaturesSuite).
import {
  hyperbolicSoftmax,
  PositiveFeatures,
  positiveSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

/** Runs fn with the fused feature kernel unregistered (the composite path). */
function composite<T>(config: tf.KernelConfig, fn: () => T): T {
  tf.unregisterKernel(config.kernelName, config.backendName);
  try {
    return fn();
  } finally {
    tf.registerKernel(config);
  }
}

async function close(a: tf.Tensor, b: tf.Tensor, rel = 2e-5): Promise<void> {
  expect(a.shape).toEqual(b.shape);
  const [x, y] = await Promise.all([a.data(), b.data()]);
  let scale = 0;
  for (const v of y) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < x.length; i++) {
    if (!(Math.abs(x[i]! - y[i]!) <= rel * scale + 1e-30)) {
      throw new Error(`entry ${i}: fused ${x[i]} vs composite ${y[i]} (scale ${scale})`);
    }
  }
}

/**
 * Every case the fused kernel serves: queries in both stabilizer modes, keys unstabilized and with
 * performer-pytorch's group stabilizer. Keys with the default stabilizer (the largest exponent,
 * half norm included) run the composite path — attention takes keys from keyParts — and must
 * agree too.
 */
const cases = [
  { map: 'positive', role: 'query', stabilize: true, compat: false, fused: true },
  { map: 'positive', role: 'query', stabilize: true, compat: true, fused: true },
  { map: 'positive', role: 'key', stabilize: true, compat: true, fused: true },
  { map: 'positive', role: 'key', stabilize: true, compat: false, fused: false },
  { map: 'positive', role: 'key', stabilize: false, compat: false, fused: true },
  { map: 'hyperbolic', role: 'query', stabilize: true, compat: false, fused: true },
  { map: 'hyperbolic', role: 'key', stabilize: true, compat: true, fused: true },
] as const;

/**
 * The fused feature kernel a backend package registers (`config`, for the active backend) against
 * core's composite tfjs-ops features on the same backend: values, gradients for the input and a
 * trainable projection, every stabilizer, positive and hyperbolic, finite extremes, no leaks.
 */
export function runFusedFeaturesSuite(config: tf.KernelConfig): void {
  describe(`fused positive features (${config.backendName})`, () => {
    beforeAll(() => {
      if (tf.getKernel(config.kernelName, config.backendName) === undefined)
        tf.registerKernel(config);
    });

    it.each(cases)(
      '$map $role stabilize=$stabilize performer-pytorch=$compat: values and gradients (fused: $fused)',
      async (c) => {
        const before = tf.memory().numTensors;
        const make = c.map === 'positive' ? positiveSoftmax : hyperbolicSoftmax;
        // m = 80 (not a multiple of 64), L = 13 (not a multiple of the row tile), 3 groups
        const phi = make({
          projection: gaussianOrthogonal(80, 16, { seed: 4 }),
          stabilize: c.stabilize,
          ...(c.compat ? { compatibility: 'performer-pytorch' as const } : {}),
        });
        const x = tf.randomNormal([3, 13, 16], 0, 1.5, 'float32', 7);
        const weights = tf.randomUniform([3, 13, phi.numFeatures], 0, 1, 'float32', 8);
        const loss = (t: tf.Tensor) => tf.sum(tf.mul(phi.features(t, c.role), weights));
        const fused = phi.features(x, c.role);
        const ref = composite(config, () => phi.features(x, c.role));
        await close(fused, ref);
        const gFused = tf.grad(loss)(x);
        const gRef = composite(config, () => tf.grad(loss)(x));
        await close(gFused, gRef, 1e-4);
        const info = await tf.profile(() => phi.features(x, c.role));
        (info.result as tf.Tensor).dispose();
        expect(info.kernels.map((k) => k.name).includes(PositiveFeatures)).toBe(c.fused);
        tf.dispose([x, weights, fused, ref, gFused, gRef]);
        phi.dispose();
        expect(tf.memory().numTensors).toBe(before);
      },
    );

    it('a trainable projection gets the same gradient', async () => {
      const w = tf.variable(tf.randomNormal([32, 8], 0, 1, 'float32', 2) as tf.Tensor2D);
      const phi = positiveSoftmax({ projection: w });
      const x = tf.randomNormal([2, 9, 8], 0, 1, 'float32', 3);
      const f = () => tf.sum(tf.sqrt(phi.features(x, 'query'))) as tf.Scalar;
      const fused = tf.variableGrads(f, [w]);
      const ref = composite(config, () => tf.variableGrads(f, [w]));
      await close(fused.grads[w.name]!, ref.grads[w.name]!, 1e-4);
      await close(fused.value, ref.value);
      tf.dispose([
        x,
        w,
        fused.value,
        ref.value,
        ...Object.values(fused.grads),
        ...Object.values(ref.grads),
      ]);
    });

    it('extreme inputs stay finite (norms up to 1e3)', async () => {
      const phi = positiveSoftmax({ projection: gaussianOrthogonal(64, 16, { seed: 1 }) });
      const x = tf.mul(tf.randomNormal([1, 5, 16], 0, 1, 'float32', 1), 250);
      for (const role of ['query', 'key'] as const) {
        const f = phi.features(x, role);
        const data = await f.data();
        expect(data.every(Number.isFinite)).toBe(true);
        f.dispose();
      }
      x.dispose();
      phi.dispose();
    });
  });
}
