// The paper's backwards compatibility (Fig. 5): a softmax Transformer's weights run as a Performer
// (attention swapped, nothing else changed); outputs stay close while attention is soft, and a
// short fine-tune wins back what the swap costs once attention has grown sharp.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import type { PerformerLM } from '../models/performer-lm/performer-lm.js';
import { SoftmaxTransformer } from '../models/softmax-transformer/softmax-transformer.js';
import { copyTaskBatch } from './tasks.js';
import { train } from './trainer.js';

it('softmax → Performer: close outputs after the swap, and a short fine-tune recovers the loss', async () => {
  const start = tf.memory().numTensors;
  const [vocab, length] = [8, 6];
  const softmax = SoftmaxTransformer.create(
    {
      numTokens: vocab,
      maxSeqLen: 2 * length + 1,
      dim: 32,
      depth: 2,
      heads: 2,
      nbFeatures: 128,
    },
    { seed: 3 },
  );
  const batch = (step: number) => copyTaskBatch({ batchSize: 16, length, vocab, seed: 500 + step });
  const held = copyTaskBatch({ batchSize: 32, length, vocab, seed: 77_777 });
  const lossOf = (m: PerformerLM) => {
    const l = m.loss(held.inputs, held.targets, held.weights);
    const v = l.dataSync()[0]!;
    l.dispose();
    return v;
  };
  const relativeLogitChange = (a: PerformerLM, b: PerformerLM) => {
    const [x, y] = [a.logits(held.inputs), b.logits(held.inputs)];
    const [xs, ys] = [x.dataSync(), y.dataSync()];
    let diff = 0;
    let spread = 0;
    for (let i = 0; i < xs.length; i++) {
      diff += Math.abs(xs[i]! - ys[i]!);
      spread += Math.abs(xs[i]!);
    }
    tf.dispose([x, y]);
    return diff / spread;
  };

  // 1. after a little training (soft attention) the swapped model is close
  await train(softmax, { steps: 15, batch, learningRate: 3e-3, progress: false });
  const early = softmax.withAttention('favor'); // the same weight tensors
  expect(relativeLogitChange(softmax, early)).toBeLessThan(0.15);
  expect(Math.abs(lossOf(early) - lossOf(softmax))).toBeLessThan(0.05 * lossOf(softmax));
  early.dispose(); // its own feature maps; the shared weights stay with `softmax`

  // 2. trained further, attention is sharp: the swap costs, a short fine-tune wins it back
  await train(softmax, {
    steps: 45,
    batch: (s) => batch(15 + s),
    learningRate: 3e-3,
    progress: false,
  });
  const softmaxLoss = lossOf(softmax);
  const performer = softmax.withAttention('favor');
  const swappedLoss = lossOf(performer);
  expect(swappedLoss).toBeGreaterThan(2 * softmaxLoss);
  await train(performer, {
    steps: 60,
    batch: (s) => batch(1000 + s),
    learningRate: 1e-3,
    progress: false,
  });
  const tunedLoss = lossOf(performer);
  expect(tunedLoss).toBeLessThan(swappedLoss / 3);
  performer.dispose();
  softmax.dispose();
  expect(tf.memory().numTensors).toBe(start);
}, 120_000);
