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
  { kernel: 'hyperbolic' as const },
  { kernel: 'relu' as const },
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

it.each(['positive', 'hyperbolic', 'relu'] as const)(
  'kernel %s: the decoding step gives the logits of the whole causal call',
  async (kernel) => {
    const start = tf.memory().numTensors;
    const model = PerformerLM.create({ ...base, depth: 2, kernel }, { seed: 5 });
    const tokens = [3, 1, 4, 1, 5, 9, 2];
    const full = model.logits([tokens]);
    const all = (await full.data()) as Float32Array;
    const steps = await model.stepLogits(tokens);
    steps.forEach((row, p) => {
      const expected = all.subarray(p * base.numTokens, (p + 1) * base.numTokens);
      for (let t = 0; t < base.numTokens; t++) expect(row[t]).toBeCloseTo(expected[t]!, 4);
    });
    full.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  },
);

it('config.kernel is checked', () => {
  expect(() => PerformerLM.create({ ...base, kernel: 'cosine' as never })).toThrow(
    /config.kernel must be 'positive', 'hyperbolic' or 'relu', got "cosine"/,
  );
  expect(() =>
    PerformerLM.create({ ...base, kernel: 'relu', stabilizer: 'performer-pytorch' }),
  ).toThrow(/applies to the 'positive' kernel only/);
});

it.each(['favor', 'softmax'] as const)(
  'attentionInputs (%s): q, k, v per layer, causal (a prefix gives the same rows)',
  async (attention) => {
    const start = tf.memory().numTensors;
    const model = PerformerLM.create({ ...base, depth: 2, attention }, { seed: 2 });
    const tokens = [1, 2, 3, 4, 5, 6];
    const full = model.attentionInputs([tokens]);
    const prefix = model.attentionInputs([tokens.slice(0, 4)]);
    expect(full.length).toBe(2);
    for (const [i, layer] of full.entries()) {
      for (const key of ['q', 'k', 'v'] as const) {
        expect(layer[key].shape).toEqual([1, base.heads, 6, base.dim / base.heads]);
        const head = tf.slice(layer[key], [0, 0, 0, 0], [1, base.heads, 4, -1]);
        const got = Array.from(await head.data());
        const want = Array.from(await prefix[i]![key].data());
        got.forEach((x, j) => {
          expect(x).toBeCloseTo(want[j]!, 5);
        });
        head.dispose();
      }
    }
    // layer 1's inputs depend on layer 0's attention: changing a token changes them after it only
    const changed = model.attentionInputs([[1, 2, 3, 4, 5, 0]]);
    const diff = tf.tidy(() => tf.abs(tf.sub(changed[1]!.q, full[1]!.q)).max(-1).arraySync());
    expect((diff as number[][][])[0]![0]!.slice(0, 5).every((x) => x === 0)).toBe(true);
    expect((diff as number[][][])[0]![0]![5]).toBeGreaterThan(0);
    for (const x of [...full, ...prefix, ...changed]) tf.dispose([x.q, x.k, x.v]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  },
);
