import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { registerLayers } from './performer-block.js';

// The performer project runs on wasm (KA_BACKEND=wasm), where tfjs-backend-wasm has no
// UnsortedSegmentSum of its own; importing the package registers ours.
describe(`UnsortedSegmentSum and Embedding training on ${tf.getBackend()}`, () => {
  it('runs on wasm', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('sums rows by segment, drops ids out of range, and equals the cpu kernel', async () => {
    registerLayers(); // idempotent
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]);
    const ids = tf.tensor1d([2, 0, 2, -1, 7], 'int32');
    const out = tf.unsortedSegmentSum(x, ids, 3);
    expect(out.shape).toEqual([3, 2]);
    expect(Array.from(await out.data())).toEqual([3, 4, 0, 0, 6, 8]);
    // rank 3 and int32 values
    const x3 = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [4, 1, 2], 'int32');
    const out3 = tf.unsortedSegmentSum(x3, tf.tensor1d([1, 1, 0, 1], 'int32'), 2);
    expect(out3.dtype).toBe('int32');
    expect(Array.from(await out3.data())).toEqual([5, 6, 1 + 3 + 7, 2 + 4 + 8]);
    tf.dispose([x, ids, out, x3, out3]);
  });

  it('trains a tfjs-layers model with an Embedding (loss goes down, no leak)', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.embedding({ inputDim: 10, outputDim: 4, inputLength: 3 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.05), loss: 'categoricalCrossentropy' });
    const xs = tf.tensor2d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1], [4, 3], 'int32');
    const ys = tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2);
    // tfjs's test-mode kernel leak check (IS_TEST, set by the test setup) miscounts wasm's fused
    // matMul in layers' training; training as users run it has the check off
    tf.env().set('IS_TEST', false);
    let before = 0;
    const history = await model
      .fit(xs, ys, { epochs: 1, verbose: 0 }) // creates the optimizer's slots
      .then(() => {
        before = tf.memory().numTensors;
        return model.fit(xs, ys, { epochs: 20, verbose: 0 });
      })
      .finally(() => tf.env().set('IS_TEST', true));
    const losses = history.history.loss as number[];
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.5);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([xs, ys]);
    model.dispose();
  });
});
