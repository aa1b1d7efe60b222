import { gaussianOrthogonal } from '@kernel-attention/random-features';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { ProjectionHolder } from './projection.js';

it('a Float64 projection is uploaded once per backend, then reused', async () => {
  const first = tf.getBackend();
  const holder = new ProjectionHolder('test', gaussianOrthogonal(8, 4, { seed: 1 }));
  const a = holder.scaledTransposed();
  expect(holder.scaledTransposed()).toBe(a); // same tensor, no second upload
  const values = Array.from(await a.data());
  tf.registerBackend('cpu-second', () => new MathBackendCPU());
  try {
    await tf.setBackend('cpu-second');
    const before = tf.memory().numTensors;
    const b = holder.scaledTransposed();
    expect(b).not.toBe(a); // a new backend gets its own copy…
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(holder.scaledTransposed()).toBe(b); // …uploaded once
    expect(Array.from(await b.data())).toEqual(values);
  } finally {
    await tf.setBackend(first);
    tf.removeBackend('cpu-second');
  }
  expect(holder.scaledTransposed()).toBe(a);
  holder.dispose();
  expect(a.isDisposed).toBe(true);
});
