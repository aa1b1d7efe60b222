import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { MODEL_TYPES } from '../registry.js';
import { PerformerEncoder } from './performer-encoder.js';

const config = {
  numTokens: 10,
  maxSeqLen: 12,
  dim: 16,
  depth: 1,
  heads: 2,
  nbFeatures: 16,
  numClasses: 2,
};

it('heads have the right shapes; padding does not change the class logits of the kept tokens', async () => {
  const start = tf.memory().numTensors;
  const enc = PerformerEncoder.create(config, { seed: 4 });
  const mlm = enc.mlmLogits([[1, 2, 3, 4]]);
  expect(mlm.shape).toEqual([1, 4, 10]);
  const short = enc.classify([[1, 2, 3]]);
  const padded = enc.classify([[1, 2, 3, 9, 9]], { mask: [[1, 1, 1, 0, 0]] });
  expect(short.shape).toEqual([1, 2]);
  const [a, b] = [await short.data(), await padded.data()];
  for (let i = 0; i < 2; i++) expect(b[i]).toBeCloseTo(a[i]!, 4);
  expect(() => enc.classify([[1, 2, 3]], { mask: [[1, 1]] })).toThrow(
    /mask must have the shape of tokens \[1, 3\]/,
  );
  expect(() => enc.classificationLoss([[1, 2]], [2])).toThrow(
    /label 2 of sequence 0 is out of range \[0, 2\)/,
  );
  expect(MODEL_TYPES['performer-encoder']).toBe(PerformerEncoder);
  tf.dispose([mlm, short, padded]);
  enc.dispose();
  expect(tf.memory().numTensors).toBe(start);
});

it('the classification head trains (does token 1 occur in the sequence?)', async () => {
  const enc = PerformerEncoder.create(config, { seed: 5 });
  const make = (seed: number) => {
    let s = seed;
    const rand = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    const tokens = Array.from({ length: 16 }, () =>
      Array.from({ length: 8 }, () => 2 + Math.floor(rand() * 8)),
    );
    const labels = tokens.map((r, b) => {
      if (b % 2 === 0) r[Math.floor(rand() * 8)] = 1;
      return b % 2 === 0 ? 1 : 0;
    });
    return { tokens, labels };
  };
  const optimizer = tf.train.adam(1e-2);
  for (let step = 0; step < 80; step++) {
    const { tokens, labels } = make(step + 1);
    optimizer.minimize(
      () => enc.classificationLoss(tokens, labels),
      false,
      enc.trainableVariables(),
    );
  }
  const { tokens, labels } = make(9999);
  const logits = enc.classify(tokens);
  const pred = (await tf.argMax(logits, -1).data()) as Int32Array;
  const accuracy = labels.filter((y, i) => y === pred[i]).length / labels.length;
  expect(accuracy).toBeGreaterThanOrEqual(0.9);
  optimizer.dispose();
  logits.dispose();
  enc.dispose();
}, 60_000);
