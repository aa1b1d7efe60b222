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

it('progress: nothing on a stderr that is not a terminal by default, a bar on a terminal, ten lines on a log stream', async () => {
  const make = () =>
    PerformerLM.create(
      { numTokens: 8, maxSeqLen: 8, dim: 16, depth: 1, heads: 2, nbFeatures: 8 },
      { seed: 3 },
    );
  const batch = (step: number) =>
    copyTaskBatch({ batchSize: 2, length: 3, vocab: 8, seed: 500 + step });
  const stderr = process.stderr as { isTTY?: boolean; write: typeof process.stderr.write };
  const writes: string[] = [];
  const write = stderr.write;
  const wasTty = stderr.isTTY;
  stderr.write = ((s: string) => writes.push(String(s)) > 0) as typeof process.stderr.write;
  const model = make();
  try {
    stderr.isTTY = false;
    await train(model, { steps: 20, batch });
    expect(writes).toEqual([]); // a log or a pipe gets no progress bar unasked
    stderr.isTTY = true;
    await train(model, { steps: 5, batch });
    expect(writes.length).toBe(6); // redrawn in place each step, then a newline
    expect(writes[0]!.startsWith('\r')).toBe(true);
  } finally {
    stderr.write = write;
    stderr.isTTY = wasTty;
  }
  const lines: string[] = [];
  await train(model, { steps: 20, batch, progress: { write: (s: string) => lines.push(s) } });
  expect(lines.length).toBe(10);
  expect(lines.every((l) => l.endsWith('\n') && !l.startsWith('\r'))).toBe(true);
  model.dispose();
}, 60_000);
