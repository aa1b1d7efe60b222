import { generalized, positiveSoftmax } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { PerformerLM } from '../models/performer-lm/performer-lm.js';
import { charTokenizer } from '../text/char-tokenizer.js';
import { evaluateKernel, meanVisibleValues, relativeErrorPerHead } from './evaluate-kernel.js';

const config = {
  numTokens: charTokenizer.vocabSize,
  maxSeqLen: 32,
  dim: 16,
  depth: 2,
  heads: 2,
  nbFeatures: 16,
};
const documents = Array.from(
  { length: 40 },
  (_, i) => `Fortune ${i}: the quick brown fox jumps over ${i % 7} lazy dogs.`,
);

it('withFeatureMap: the configured map gives the model’s own logits, another map others', async () => {
  const start = tf.memory().numTensors;
  const model = PerformerLM.create(config, { seed: 4 });
  const same = model.withFeatureMap((_, projection) => positiveSoftmax({ projection, eps: 1e-4 }));
  const relu = model.withFeatureMap((_, projection) => generalized({ fn: 'relu', projection }));
  const tokens = [[0, 5, 9, 30, 2, 7]];
  const [a, b, c] = [model.logits(tokens), same.logits(tokens), relu.logits(tokens)];
  expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]!);
  expect(diff).toBeGreaterThan(1e-4);
  expect(() => model.withFeatureMap(null as never)).toThrow(/featureMap must be a function/);
  expect(() => model.withFeatureMap((() => 5) as never)).toThrow(
    /must return a FeatureMap .* for layer 0, got number/,
  );
  tf.dispose([a, b, c]);
  same.dispose();
  relu.dispose();
  model.dispose();
  expect(tf.memory().numTensors).toBe(start);
});

it('evaluateKernel: per-head errors against exact attention, bpc swapped and fine-tuned, the model untouched', async () => {
  const start = tf.memory().numTensors;
  const model = PerformerLM.create(config, { seed: 4 });
  const before = model.logits([[0, 1, 2, 3]]);
  const own = (_: number, projection: Parameters<typeof positiveSoftmax>[0]['projection']) =>
    positiveSoftmax({ projection, eps: 1e-4 });
  const report = await evaluateKernel(own, { model, documents, length: 24, windows: 3 });
  expect(report.heads).toHaveLength(config.depth * config.heads);
  for (const h of report.heads) {
    expect(h.error).toBeGreaterThan(0);
    expect(h.error).toBeLessThan(1);
    expect(h.meanVError).toBeGreaterThan(0);
  }
  // the model's own map swapped in is the model itself
  expect(report.bitsPerChar.swapped).toBe(report.bitsPerChar.model);
  expect(report.bitsPerChar.fineTuned).toBeNull();
  expect(Math.abs(report.bitsPerChar.exact - report.bitsPerChar.model)).toBeLessThan(0.5);

  const tuned = await evaluateKernel((_, projection) => generalized({ fn: 'relu', projection }), {
    model,
    documents,
    length: 24,
    windows: 3,
    fineTuneSteps: 3,
    learningRate: 1e-2,
  });
  expect(tuned.bitsPerChar.fineTuned).toBeLessThan(tuned.bitsPerChar.swapped);
  const after = model.logits([[0, 1, 2, 3]]);
  expect(Array.from(await after.data())).toEqual(Array.from(await before.data()));
  tf.dispose([before, after]);
  model.dispose();
  expect(tf.memory().numTensors).toBe(start);
}, 60_000);

it('evaluateKernel: bad input gets a clear error', async () => {
  const model = PerformerLM.create(config, { seed: 4 });
  const map = (_: number, projection: Parameters<typeof positiveSoftmax>[0]['projection']) =>
    positiveSoftmax({ projection });
  await expect(evaluateKernel(null as never, { model })).rejects.toThrow(
    /featureMap must be a function .* got null/,
  );
  await expect(evaluateKernel(map, null as never)).rejects.toThrow(/options must be an object/);
  await expect(evaluateKernel(map, { model, documents, length: 1 })).rejects.toThrow(
    /length must be an integer >= 2, got 1/,
  );
  await expect(evaluateKernel(map, { model, documents, length: 64 })).rejects.toThrow(
    /length 64 exceeds the model's maxSeqLen 32/,
  );
  await expect(evaluateKernel(map, { model, documents: ['short'], length: 24 })).rejects.toThrow(
    /give 0 evaluation windows of 24 tokens/,
  );
  model.dispose();
});

it('meanVisibleValues: the mean of all values, or causally of those up to each query; errors per head', async () => {
  const v = tf.tensor4d([1, 3, 5, 10, 20, 60], [1, 2, 3, 1]); // two heads of three values
  const all = meanVisibleValues(v, false);
  const causal = meanVisibleValues(v, true);
  expect(Array.from(await all.data())).toEqual([3, 3, 3, 30, 30, 30]);
  expect(Array.from(await causal.data())).toEqual([1, 2, 3, 10, 15, 30]);
  const errors = relativeErrorPerHead(all, v);
  expect(errors[0]).toBeCloseTo(Math.sqrt(8) / Math.sqrt(35), 6);
  expect(errors[1]).toBeCloseTo(Math.sqrt(1400) / Math.sqrt(4100), 6);
  tf.dispose([v, all, causal]);
});
