import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { PerformerBlock } from '../layers/performer-block.js';
import { fileSystem, registerFileSystemRouter } from './file-system.js';

const root = mkdtempSync(join(tmpdir(), 'ka-fs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function performerModel(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.inputLayer({ inputShape: [6, 8] }),
      new PerformerBlock({ heads: 2, nbFeatures: 8, causal: true, seed: 1 }),
      tfl.layers.dense({ units: 3 }),
    ],
  });
}

describe('fileSystem (a tf.io handler for Node without tfjs-node)', () => {
  it('saves model.json + weights.bin and loads a model with Performer layers to identical outputs', async () => {
    const model = performerModel();
    const dir = join(root, 'nested', 'model');
    const result = await model.save(fileSystem(dir));
    expect(result.modelArtifactsInfo.weightDataBytes).toBeGreaterThan(0);
    expect(readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].paths).toEqual(['./weights.bin']);
    expect(readFileSync(join(dir, 'weights.bin')).byteLength).toBe(
      result.modelArtifactsInfo.weightDataBytes,
    );
    const x = tf.randomNormal([2, 6, 8], 0, 1, 'float32', 3);
    const loaded = await tfl.loadLayersModel(fileSystem(`file://${dir}/model.json`));
    const a = model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  });

  it('registerFileSystemRouter makes file:// URLs work with model.save and tf.loadLayersModel', async () => {
    registerFileSystemRouter();
    registerFileSystemRouter(); // idempotent: a second router would make tf.io refuse the URL
    expect(tf.io.getSaveHandlers('file:///x')).toHaveLength(1);
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [3] })] });
    const dir = join(root, 'routed');
    await model.save(`file://${dir}`);
    const loaded = await tfl.loadLayersModel(`file://${dir}/model.json`);
    const w0 = await model.getWeights()[0]!.data();
    const w1 = await loaded.getWeights()[0]!.data();
    expect(Array.from(w1)).toEqual(Array.from(w0));
    model.dispose();
    loaded.dispose();
  });

  it('says what is wrong: bad dir, missing or foreign model.json', async () => {
    expect(() => fileSystem('')).toThrow(/dir must be a non-empty string.*empty string/);
    expect(() => fileSystem(null as unknown as string)).toThrow(/dir must be .* got null/);
    await expect(tfl.loadLayersModel(fileSystem(join(root, 'absent')))).rejects.toThrow(
      /fileSystem: cannot read .*absent\/model\.json/,
    );
    const dir = join(root, 'foreign');
    await tfl
      .sequential({ layers: [tfl.layers.dense({ units: 1, inputShape: [1] })] })
      .save(fileSystem(dir));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'model.json'), '{"weights": []}');
    await expect(tfl.loadLayersModel(fileSystem(dir))).rejects.toThrow(/has no modelTopology/);
  });
});
