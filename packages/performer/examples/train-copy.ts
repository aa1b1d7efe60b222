/**
 * `pnpm --filter @kernel-attention/performer train-example`: trains a PerformerLM on the copy task
 * (copyTaskBatch: n random symbols, a separator, the same n symbols; scored on the copied half)
 * in Node on the wasm backend, then reports the accuracy on held-out sequences.
 * Flags: --length N (symbols to copy, default 32: sequences of 65 tokens), --steps S (default 500).
 */
import '@tensorflow/tfjs'; // registers the gradient functions training needs
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { copyTaskBatch, PerformerLM, train, weightedAccuracy } from '../src/index.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const length = arg('length', 32);
const steps = arg('steps', 500);
const vocab = 16;
await tf.setBackend('wasm');
await tf.ready();
const model = PerformerLM.create(
  { numTokens: vocab, maxSeqLen: 2 * length + 1, dim: 64, depth: 2, heads: 4, nbFeatures: 32 },
  { seed: 1 },
);
console.log(
  `copy task: ${length} symbols (sequences of ${2 * length + 1} tokens), vocab ${vocab}; PerformerLM dim 64, depth 2, 4 heads, m = 32, on ${tf.getBackend()}`,
);
const t0 = performance.now();
await train(model, {
  steps,
  learningRate: 2e-3,
  batch: (step) => copyTaskBatch({ batchSize: 16, length, vocab, seed: 1000 + step }),
  redraw: { every: 200, seed: 3 },
});
const test = copyTaskBatch({ batchSize: 64, length, vocab, seed: 123_456 });
const logits = model.logits(test.inputs);
const accuracy = weightedAccuracy((await logits.data()) as Float32Array, test, vocab);
console.log(
  `held-out accuracy on the copied half: ${(100 * accuracy).toFixed(1)} % after ${steps} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
logits.dispose();
model.dispose();
