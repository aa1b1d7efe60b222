import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { MODEL_TYPES } from '../registry.js';
import { PerformerLM } from './performer-lm.js';

const base = { numTokens: 12, maxSeqLen: 10, dim: 16, depth: 1, heads: 2, nbFeatures: 8 };

it.each([
  { tieEmbed: true },
  { rotary: false },
  { absolutePositions: false },
  { qkvBias: true, attnOutBias: true },
  { causal: false },
])('variants run and train: %o', async (variant) => {
  const start = tf.memory().numTensors;
  const model = PerformerLM.create({ ...base, ...variant }, { seed: 1 });
  const logits = model.logits([[1, 2, 3, 4]]);
  expect(logits.shape).toEqual([1, 4, 12]);
  expect((await logits.data()).every(Number.isFinite)).toBe(true);
  const names = model.trainableVariables().length;
  if (variant.tieEmbed) expect(model.weights.outWeight).toBeNull(); // the embedding is the output projection
  const grads = tf.variableGrads(
    () => model.loss([[1, 2, 3]], [[2, 3, 4]]),
    model.trainableVariables(),
  );
  expect(Object.keys(grads.grads).length).toBe(names);
  tf.dispose([logits, grads.value, ...Object.values(grads.grads)]);
  model.dispose();
  expect(tf.memory().numTensors).toBe(start);
});

it('the registry maps model types to classes', () => {
  expect(MODEL_TYPES['performer-lm']).toBe(PerformerLM);
  expect(() => PerformerLM.create({ ...base, dimHead: 3 })).toThrow(
    /rotary embeddings need an even dimHead, got 3/,
  );
  expect(() => PerformerLM.create({ ...base, heads: 0 })).toThrow(
    /config.heads must be a positive integer, got 0/,
  );
});

it('saves to safetensors and loads back with the same logits (and keeps training)', async () => {
  const start = tf.memory().numTensors;
  const model = PerformerLM.create({ ...base, qkvBias: true, tieEmbed: true }, { seed: 3 });
  const bytes = model.toSafetensors();
  const loaded = PerformerLM.fromSafetensors(bytes);
  const [a, b] = [model.logits([[1, 5, 7, 2]]), loaded.logits([[1, 5, 7, 2]])];
  expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
  expect(loaded.config).toEqual(model.config);
  expect(loaded.trainableVariables().length).toBe(model.trainableVariables().length);
  expect(() => PerformerLM.fromSafetensors(bytes.subarray(0, bytes.length - 4))).toThrow(
    /truncated/,
  );
  tf.dispose([a, b]);
  model.dispose();
  loaded.dispose();
  expect(tf.memory().numTensors).toBe(start);
});
