/**
 * Experiment 1: train a model from scratch on the fortunes corpus and record its learning curve
 * (validation bits per character every TRAIN.evalEvery steps). Writes
 * bench/results/lm-fortunes/train-<model>.json and the weights to bench/data/lm/<model>.safetensors.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { watchOtherCpu } from '@kernel-attention/cli/cpu';
import { train } from '@kernel-attention/performer';
import * as tf from '@tensorflow/tfjs-core';
import {
  bitsPerChar,
  CHECKPOINTS,
  createModel,
  MODELS,
  TRAIN,
  trainBatch,
  windows,
  writeResults,
} from './common.js';

export interface CurvePoint {
  step: number;
  validationBpc: number;
  /** mean training loss (bits per character) over the steps since the last point */
  trainBpc: number | null;
  seconds: number;
}

export async function trainModel(name: string, steps = TRAIN.steps): Promise<void> {
  const model = createModel(name);
  const validation = windows('validation', TRAIN.length, TRAIN.validationWindows);
  const curve: CurvePoint[] = [];
  const t0 = performance.now();
  const cpu = watchOtherCpu();
  let since: number[] = [];
  const record = (step: number) => {
    const bpc = bitsPerChar(model, validation);
    const trainBpc = since.length
      ? since.reduce((a, b) => a + b, 0) / since.length / Math.LN2
      : null;
    curve.push({ step, validationBpc: bpc, trainBpc, seconds: (performance.now() - t0) / 1000 });
    since = [];
    process.stderr.write(
      `${name} step ${step}: validation ${bpc.toFixed(3)} bpc, train ${trainBpc?.toFixed(3) ?? '-'} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
    );
    save({ otherCoresDuringRun: null, done: false });
  };
  const save = (status: { seconds?: number; otherCoresDuringRun: number | null; done: boolean }) =>
    writeResults(`train-${name}`, {
      model: name,
      config: model.config,
      training: { ...TRAIN, steps },
      backend: `${tf.getBackend()} (tfjs 4.22, Node ${process.version}, 1 thread)`,
      curve,
      ...status,
    });
  record(0);
  const optimizer = tf.train.adam(TRAIN.learningRate);
  const favor = model.config.attention === 'favor';
  for (let start = 0; start < steps; start += TRAIN.evalEvery) {
    const n = Math.min(TRAIN.evalEvery, steps - start);
    const losses = await train(model, {
      steps: n,
      batch: (s) => trainBatch(start + s),
      optimizer,
      ...(favor ? { redraw: { every: TRAIN.redrawEvery, seed: TRAIN.seed + start } } : {}),
      progress: false,
    });
    since = losses;
    record(start + n);
  }
  optimizer.dispose();
  mkdirSync(CHECKPOINTS, { recursive: true });
  writeFileSync(join(CHECKPOINTS, `${name}.safetensors`), model.toSafetensors());
  const { otherCores, seconds } = cpu.stop();
  save({ seconds, otherCoresDuringRun: otherCores, done: true });
  model.dispose();
}

export const MODEL_NAMES = Object.keys(MODELS);
