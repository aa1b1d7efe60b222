import { createRng } from '@kernel-attention/random-features';
import type { TrainBatch } from './trainer.js';

export interface CopyTaskOptions {
  batchSize: number;
  /** Symbols to copy per sequence (sequences are 2·length + 1 long). */
  length: number;
  /** Vocabulary size; token 0 is the separator, symbols are 1 … vocab − 1. */
  vocab: number;
  seed: number;
}

/**
 * The copy task: [s_1 … s_n, 0, s_1 … s_n] with random symbols; the model reads the whole
 * sequence causally and is scored on predicting the second half (loss weights 1 there, 0 before).
 * Solving it needs attention across n positions. A pure function of its options.
 *
 * @param opts - `{ batchSize, length, vocab, seed }`
 */
export function copyTaskBatch(opts: CopyTaskOptions): TrainBatch {
  const { batchSize, length: n, vocab, seed } = opts;
  const rng = createRng(seed);
  const inputs: number[][] = [];
  const targets: number[][] = [];
  const weights: number[][] = [];
  for (let b = 0; b < batchSize; b++) {
    const symbols = Array.from({ length: n }, () => 1 + Math.floor(rng.uniform() * (vocab - 1)));
    const seq = [...symbols, 0, ...symbols];
    inputs.push(seq.slice(0, -1));
    targets.push(seq.slice(1));
    weights.push(seq.slice(1).map((_, t) => (t >= n ? 1 : 0)));
  }
  return { inputs, targets, weights };
}

/**
 * Share of weighted positions whose most likely token is the target.
 *
 * @param logits - the model's logits [B, N, vocab], flat
 * @param batch - the batch the logits are for (its targets and weights)
 * @param vocab - the vocabulary size
 */
export function weightedAccuracy(logits: Float32Array, batch: TrainBatch, vocab: number): number {
  let hit = 0;
  let total = 0;
  batch.targets.forEach((row, b) => {
    row.forEach((target, t) => {
      if ((batch.weights?.[b]?.[t] ?? 1) === 0) return;
      const base = (b * row.length + t) * vocab;
      let best = 0;
      for (let v = 1; v < vocab; v++) if (logits[base + v]! > logits[base + best]!) best = v;
      total++;
      if (best === target) hit++;
    });
  });
  return total === 0 ? 0 : hit / total;
}
