import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { PerformerAttention, PerformerBlock } from './performer-block.js';

async function roundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tfl.loadLayersModel(tf.io.fromMemory(saved!));
}

it.each([
  [
    'PerformerAttention',
    () => new PerformerAttention({ heads: 2, nbFeatures: 16, causal: true, seed: 3 }),
  ],
  [
    'PerformerBlock',
    () => new PerformerBlock({ heads: 2, nbFeatures: 16, causal: true, seed: 3, dropout: 0.1 }),
  ],
] as const)('%s saves and loads with tf.io and gives identical outputs', async (_, make) => {
  const model = tfl.sequential({
    layers: [tfl.layers.inputLayer({ inputShape: [10, 16] }), make()],
  });
  const x = tf.randomNormal([2, 10, 16], 0, 1, 'float32', 1);
  const a = model.predict(x) as tf.Tensor;
  expect(a.shape).toEqual([2, 10, 16]);
  const loaded = await roundTrip(model);
  const b = loaded.predict(x) as tf.Tensor;
  expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
  // the FAVOR+ projection is a weight, not trained
  const layer = loaded.layers.at(-1)!;
  expect(layer.getClassName()).toBe(make().getClassName());
  expect(
    layer.nonTrainableWeights.map((w) => w.name.split('/').pop()!.replace(/_\d+$/, '')),
  ).toEqual(['projection']);
  tf.dispose([x, a, b]);
  model.dispose();
  loaded.dispose();
});

it('PerformerBlock trains inside a tfjs-layers model (fit lowers the loss) and is causal', async () => {
  // on cpu: tfjs-layers' Dense runs fusedMatMul, a custom gradient whose saved clones (full copies
  // on wasm) trip tfjs's own test-mode leak check there — not a leak, and not our code
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  // featureEps 0: the key stabilizer (a max over all keys, DESIGN.md) then cancels exactly, so the
  // check below sees the attention's causality alone (with eps > 0 a much larger future key moves
  // earlier outputs at the eps level; see docs/decisions/2026-11-24-causal-key-stabilizer.md)
  const block = new PerformerBlock({
    heads: 2,
    nbFeatures: 16,
    causal: true,
    seed: 1,
    featureEps: 0,
  });
  const model = tfl.sequential({
    layers: [tfl.layers.inputLayer({ inputShape: [6, 8] }), block, tfl.layers.dense({ units: 1 })],
  });
  model.compile({ optimizer: tf.train.adam(1e-2), loss: 'meanSquaredError' });
  const x = tf.randomNormal([16, 6, 8], 0, 1, 'float32', 2);
  const y = tf.cumsum(tf.slice(x, [0, 0, 0], [16, 6, 1]), 1); // needs the past only
  const history = await model.fit(x, y, { epochs: 30, batchSize: 16, verbose: 0 });
  const losses = history.history.loss as number[];
  expect(losses.at(-1)!).toBeLessThan(losses[0]! / 2);
  // causal: changing the last position leaves the earlier outputs as they were
  const x2 = tf.concat(
    [tf.slice(x, [0, 0, 0], [16, 5, 8]), tf.randomNormal([16, 1, 8], 0, 3, 'float32', 9)],
    1,
  );
  const [p, p2] = [model.predict(x) as tf.Tensor, model.predict(x2) as tf.Tensor];
  const head = (t: tf.Tensor) => tf.slice(t, [0, 0, 0], [16, 5, 1]).dataSync();
  const [h1, h2] = [head(p), head(p2)];
  for (let i = 0; i < h1.length; i++) expect(h2[i]).toBeCloseTo(h1[i]!, 4);
  tf.dispose([x, y, x2, p, p2]);
  model.dispose();
  await tf.setBackend(previous);
}, 60_000);

it('takes the padding mask of an Embedding with maskZero: padding changes no real token', async () => {
  const make = (maskZero: boolean) =>
    tfl.sequential({
      layers: [
        tfl.layers.embedding({
          inputDim: 10,
          outputDim: 8,
          maskZero,
          inputShape: [null],
          embeddingsInitializer: tfl.initializers.randomNormal({ seed: 1 }),
        }),
        new PerformerBlock({ heads: 2, nbFeatures: 16, seed: 2, featureEps: 0 }),
      ],
    });
  const first3 = (t: tf.Tensor) => Array.from(tf.slice(t, [0, 0, 0], [1, 3, 8]).dataSync());
  for (const maskZero of [true, false]) {
    const model = make(maskZero);
    const short = model.predict(tf.tensor2d([[3, 4, 5]])) as tf.Tensor;
    const padded = model.predict(tf.tensor2d([[3, 4, 5, 0, 0, 0]])) as tf.Tensor;
    const [a, b] = [first3(short), first3(padded)];
    const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
    if (maskZero)
      expect(worst).toBeLessThan(1e-5); // the block honours the mask…
    else expect(worst).toBeGreaterThan(1e-3); // …without it the pads are attended to
    tf.dispose([short, padded]);
    model.dispose();
  }
});

it('rejects bad configuration', () => {
  expect(() => new PerformerBlock({ heads: 0, nbFeatures: 16 })).toThrow(
    /heads must be a positive integer, got 0/,
  );
  expect(() => new PerformerBlock({ heads: 2, nbFeatures: 16, dropout: 1 })).toThrow(
    /dropout must be in \[0, 1\)/,
  );
  expect(
    () => new PerformerBlock({ heads: 2, nbFeatures: 16, attention: 'linear' as 'favor' }),
  ).toThrow(
    /attention must be one of favor, softmax, rpe, combiner, gated, relation, bayesian, got "linear"/,
  );
  expect(
    () =>
      new PerformerBlock({
        heads: 2,
        nbFeatures: 16,
        attention: 'rpe',
        maxLength: 8,
        memorySlots: 2,
      }),
  ).toThrow(/memorySlots is for attention 'favor' or 'softmax', got attention "rpe"/);
  expect(() => new PerformerBlock({ heads: 2, nbFeatures: 16, memorySlots: -1 })).toThrow(
    /memorySlots must be an integer >= 0, got -1/,
  );
  expect(() => new PerformerBlock({ heads: 2, nbFeatures: 16, klWeight: -1 })).toThrow(
    /klWeight must be a finite number >= 0, got -1/,
  );
  expect(() => new PerformerBlock({ heads: 2, nbFeatures: 16, weibullShape: 0 })).toThrow(
    /weibullShape must be a finite number > 0, got 0/,
  );
  expect(
    () => new PerformerBlock({ heads: 2, nbFeatures: 16, featureMap: 'cos' as 'trig' }),
  ).toThrow(/featureMap must be one of/);
  expect(() => new PerformerBlock({ heads: 2, nbFeatures: 16, attention: 'rpe' })).toThrow(
    /attention 'rpe' needs maxLength/,
  );
  const model = () =>
    tfl.sequential({
      layers: [
        tfl.layers.inputLayer({ inputShape: [4, 6] }),
        new PerformerBlock({ heads: 4, nbFeatures: 8 }),
      ],
    });
  expect(model).toThrow(/dimHead must be an integer \(even with rotary\)/);
});

it.each([
  { attention: 'favor', featureMap: 'hyperbolic' },
  { attention: 'favor', featureMap: 'trig' },
  { attention: 'favor', featureMap: 'relu' },
  { attention: 'rpe', featureMap: 'positive', maxLength: 12 },
  { attention: 'combiner', combinerVariant: 'logsparse' },
  { attention: 'softmax' },
  { attention: 'softmax', memorySlots: 3 },
  { attention: 'favor', featureMap: 'positive', memorySlots: 3 },
  { attention: 'gated' },
  { attention: 'relation', maxDistance: 3 },
  { attention: 'bayesian' },
] as const)(
  'runs any core mechanism or feature map and round-trips it: $attention $featureMap',
  async (extra) => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.inputLayer({ inputShape: [10, 16] }),
        new PerformerBlock({ heads: 2, nbFeatures: 16, causal: true, seed: 4, ...extra }),
      ],
    });
    const x = tf.randomNormal([1, 10, 16], 0, 1, 'float32', 5);
    const a = model.predict(x) as tf.Tensor;
    expect((await a.data()).every(Number.isFinite)).toBe(true);
    const loaded = await roundTrip(model);
    const b = loaded.predict(x) as tf.Tensor;
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    if (extra.attention === 'rpe') {
      expect(
        loaded.layers.at(-1)!.trainableWeights.some((w) => w.name.includes('relative_bias')),
      ).toBe(true);
      const long = tf.zeros([1, 13, 16]);
      expect(() => loaded.predict(long)).toThrow(
        /sequence length 13 exceeds maxLength 12|expected/,
      );
      long.dispose();
    }
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  },
);

it('gated and bayesian layers add their auxiliary loss to fit, and train their own weights', async () => {
  const previous = tf.getBackend();
  await tf.setBackend('cpu'); // see the fit test above (tfjs-layers' Dense on wasm)
  for (const attention of ['gated', 'bayesian'] as const) {
    const block = new PerformerBlock({
      heads: 2,
      nbFeatures: 16,
      seed: 6,
      attention,
      causal: true,
    });
    const model = tfl.sequential({
      layers: [
        tfl.layers.inputLayer({ inputShape: [6, 8] }),
        block,
        tfl.layers.dense({ units: 1 }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(1e-2), loss: 'meanSquaredError' });
    const x = tf.randomNormal([8, 6, 8], 0, 1, 'float32', 3);
    const y = tf.cumsum(tf.slice(x, [0, 0, 0], [8, 6, 1]), 1);
    const own = attention === 'gated' ? 'gate_kernel' : 'prior_kernel';
    const weight = () =>
      block.trainableWeights
        .find((w) => w.name.includes(own))!
        .read()
        .dataSync()
        .slice();
    const before = weight();
    const history = await model.fit(x, y, { epochs: 5, batchSize: 8, verbose: 0 });
    expect((history.history.loss as number[]).every(Number.isFinite)).toBe(true);
    const after = weight();
    expect(Math.max(...after.map((a, i) => Math.abs(a - before[i]!)))).toBeGreaterThan(1e-6);
    const aux = block.auxiliaryLoss;
    expect(aux).not.toBeNull();
    expect(Number.isFinite(aux!.dataSync()[0]!)).toBe(true);
    expect(aux!.dataSync()[0]!).toBeGreaterThan(0);
    // inference is deterministic, training samples (relaxed gates / Weibull weights)
    const [p1, p2] = [model.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor];
    expect(Array.from(p1.dataSync())).toEqual(Array.from(p2.dataSync()));
    const t1 = block.apply(x, { training: true }) as tf.Tensor;
    const t2 = block.apply(x, { training: true }) as tf.Tensor;
    expect(Array.from(t1.dataSync())).not.toEqual(Array.from(t2.dataSync()));
    tf.dispose([x, y, p1, p2, t1, t2]);
    model.dispose();
  }
  await tf.setBackend(previous);
}, 60_000);
