/** What the language-model experiments share: the models, the data stream, batches and bpc. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  encodeDocuments,
  PerformerLM,
  type PerformerLMConfig,
  type TrainBatch,
} from '@kernel-attention/performer';
import { createRng } from '@kernel-attention/random-features';
import { readSplit, type Split } from './data.js';

/** One JSON file per experiment (and per trained model), so that runs in parallel never collide. */
export const RESULTS = fileURLToPath(new URL('../../results/lm-fortunes/', import.meta.url));
export const CHECKPOINTS = fileURLToPath(new URL('../../data/lm/', import.meta.url));

const BASE = {
  numTokens: 99,
  maxSeqLen: 1024,
  dim: 128,
  depth: 4,
  heads: 4,
  nbFeatures: 128,
  // positions from rotary embeddings alone: the fixed sinusoids (norm ≈ 8) would drown the
  // N(0, 0.02) token embeddings at the start of training
  absolutePositions: false,
} satisfies PerformerLMConfig;

/** The models compared: the same shapes, the same initial weights (seed), the same data order. */
export const MODELS: Record<string, PerformerLMConfig> = {
  transformer: { ...BASE, attention: 'softmax' },
  'favor-positive': { ...BASE, kernel: 'positive' },
  // 2·64 = 128 features: the same feature count (and cost) as the positive map's
  'favor-hyperbolic': { ...BASE, kernel: 'hyperbolic', nbFeatures: 64 },
  'performer-relu': { ...BASE, kernel: 'relu' },
};

export const TRAIN = {
  length: 512,
  batch: 2,
  steps: 1000,
  learningRate: 2e-3,
  evalEvery: 100,
  /** favor models: new random features every this many steps (performer-pytorch redraws too) */
  redrawEvery: 100,
  seed: 0,
  validationWindows: 24,
};

export function createModel(name: string, maxSeqLen?: number): PerformerLM {
  const config = MODELS[name];
  if (!config) throw new Error(`unknown model '${name}' (have ${Object.keys(MODELS).join(', ')})`);
  return PerformerLM.create(
    { ...config, ...(maxSeqLen ? { maxSeqLen } : {}) },
    { seed: TRAIN.seed },
  );
}

const streams = new Map<Split, Int32Array>();
export function stream(split: Split): Int32Array {
  let s = streams.get(split);
  if (!s) {
    s = encodeDocuments(readSplit(split));
    streams.set(split, s);
  }
  return s;
}

/** Batch of `step`: random windows of the training stream, a pure function of (seed, step). */
export function trainBatch(step: number, length = TRAIN.length, batch = TRAIN.batch): TrainBatch {
  const s = stream('train');
  const rng = createRng(1_000_003 * (step + 1) + TRAIN.seed);
  const inputs: number[][] = [];
  const targets: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const o = Math.floor(rng.uniform() * (s.length - length - 1));
    inputs.push(Array.from(s.subarray(o, o + length)));
    targets.push(Array.from(s.subarray(o + 1, o + length + 1)));
  }
  return { inputs, targets };
}

/** The first `count` non-overlapping windows of a split (all of it when count is omitted). */
export function windows(split: Split, length: number, count?: number): TrainBatch {
  const s = stream(split);
  const n = Math.min(count ?? Number.POSITIVE_INFINITY, Math.floor((s.length - 1) / length));
  const inputs: number[][] = [];
  const targets: number[][] = [];
  for (let w = 0; w < n; w++) {
    inputs.push(Array.from(s.subarray(w * length, (w + 1) * length)));
    targets.push(Array.from(s.subarray(w * length + 1, (w + 1) * length + 1)));
  }
  return { inputs, targets };
}

/** Bits per character of `model` on the windows (every position scored, 4 windows per call). */
export function bitsPerChar(model: PerformerLM, data: TrainBatch, perCall = 4): number {
  let nats = 0;
  for (let i = 0; i < data.inputs.length; i += perCall) {
    const inputs = data.inputs.slice(i, i + perCall);
    const loss = model.loss(inputs, data.targets.slice(i, i + perCall));
    nats += loss.dataSync()[0]! * inputs.length;
    loss.dispose();
  }
  return nats / data.inputs.length / Math.LN2;
}

/** Writes one experiment's results (bench/results/lm-fortunes/<section>.json). */
export function writeResults(section: string, value: unknown): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${section}.json`), `${JSON.stringify(value, null, 1)}\n`);
}

export function readResults<T>(section: string): T | null {
  try {
    return JSON.parse(readFileSync(join(RESULTS, `${section}.json`), 'utf8')) as T;
  } catch {
    return null;
  }
}
