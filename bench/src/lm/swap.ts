/**
 * Experiment 2, backwards compatibility (the paper's fine-tuning result): the trained Transformer's
 * weights run with FAVOR+ attention instead of softmax, no training (validation bpc), then a
 * fine-tuning curve of the swapped model. Writes bench/results/lm-fortunes/swap.json and the
 * fine-tuned model to bench/data/lm/transformer-to-favor.safetensors.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformerLM, train } from '@kernel-attention/performer';
import * as tf from '@tensorflow/tfjs-core';
import { bitsPerChar, CHECKPOINTS, TRAIN, trainBatch, windows, writeResults } from './common.js';

export async function swapExperiment(steps = 500, every = 25): Promise<void> {
  const softmax = PerformerLM.fromSafetensors(
    readFileSync(join(CHECKPOINTS, 'transformer.safetensors')),
  );
  const validation = windows('validation', TRAIN.length, TRAIN.validationWindows);
  const transformerBpc = bitsPerChar(softmax, validation);
  const performer = softmax.withAttention('favor');
  const curve: { step: number; validationBpc: number }[] = [];
  const optimizer = tf.train.adam(TRAIN.learningRate / 4);
  const t0 = performance.now();
  const record = (step: number) => {
    curve.push({ step, validationBpc: bitsPerChar(performer, validation) });
    process.stderr.write(
      `swap step ${step}: ${curve.at(-1)!.validationBpc.toFixed(3)} bpc (transformer ${transformerBpc.toFixed(3)})\n`,
    );
    writeResults('swap', {
      source:
        'transformer (bench/results/lm-fortunes/train-transformer.json), attention swapped to FAVOR+ (positive features, m = 128 per head)',
      transformerBpc,
      fineTune: {
        steps,
        learningRate: TRAIN.learningRate / 4,
        batch: TRAIN.batch,
        length: TRAIN.length,
        data: 'training batches after those the Transformer saw',
      },
      curve,
      seconds: (performance.now() - t0) / 1000,
    });
  };
  record(0);
  for (let start = 0; start < steps; start += every) {
    await train(performer, {
      steps: every,
      batch: (s) => trainBatch(TRAIN.steps + start + s),
      optimizer,
      progress: false,
    });
    record(start + every);
  }
  optimizer.dispose();
  // the converted and fine-tuned model is a Performer too: publish may ship it
  writeFileSync(join(CHECKPOINTS, 'transformer-to-favor.safetensors'), performer.toSafetensors());
  performer.dispose();
  softmax.dispose();
}
