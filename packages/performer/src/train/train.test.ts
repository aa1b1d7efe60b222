import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { PerformerLM } from '../models/performer-lm/performer-lm.js';
import { copyTaskBatch, weightedAccuracy } from './tasks.js';
import { train } from './trainer.js';

it('a tiny PerformerLM learns the copy task (accuracy on the copied half above 0.9)', async () => {
  const vocab = 8;
  const length = 6;
  const model = PerformerLM.create(
    { numTokens: vocab, maxSeqLen: 2 * length + 1, dim: 32, depth: 2, heads: 2, nbFeatures: 16 },
    { seed: 1 },
  );
  const batch = (step: number) => copyTaskBatch({ batchSize: 16, length, vocab, seed: 100 + step });
  const seen: number[] = [];
  const losses = await train(model, {
    steps: 250,
    batch,
    learningRate: 3e-3,
    redraw: { every: 100, seed: 7 },
    progress: false,
    callbacks: { onStepEnd: ({ step }) => void seen.push(step) },
  });
  expect(seen).toEqual([...Array(250).keys()]);
  expect(losses.at(-1)!).toBeLessThan(losses[0]! / 3);
  const test = copyTaskBatch({ batchSize: 32, length, vocab, seed: 99_999 });
  const logits = model.logits(test.inputs);
  const accuracy = weightedAccuracy((await logits.data()) as Float32Array, test, vocab);
  logits.dispose();
  expect(accuracy).toBeGreaterThan(0.9);
  model.dispose();
}, 120_000);

it('feature redraw is deterministic: same seed and step give the same projections', async () => {
  const start = tf.memory().numTensors;
  const make = () =>
    PerformerLM.create(
      { numTokens: 8, maxSeqLen: 8, dim: 16, depth: 2, heads: 2, nbFeatures: 8 },
      { seed: 2 },
    );
  const a = make();
  const b = make();
  const batch = () => copyTaskBatch({ batchSize: 2, length: 3, vocab: 8, seed: 1 });
  await train(a, { steps: 3, batch, redraw: { every: 2, seed: 5 }, progress: false });
  await train(b, { steps: 3, batch, redraw: { every: 2, seed: 5 }, progress: false });
  expect(a.projections.map((p) => Array.from(p.data))).toEqual(
    b.projections.map((p) => Array.from(p.data)),
  );
  const before = a.projections[0]!.data.slice();
  await train(a, { steps: 1, batch, redraw: { every: 2, seed: 6 }, progress: false });
  expect(Array.from(a.projections[0]!.data)).not.toEqual(Array.from(before));
  a.dispose();
  b.dispose();
  expect(tf.memory().numTensors).toBe(start); // models, optimizers and steps free everything
});
