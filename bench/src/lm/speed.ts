/**
 * Experiment 1, speed: training and inference tokens/s of the compared models at L = 512 … 4096
 * (batch 1, fresh weights, wasm in Node, one thread). Each (model, L) runs in its own process, so
 * that one running out of memory (exact attention's L×L scores) cannot disturb the next; the
 * other processes' CPU during each is recorded. Writes bench/results/lm-fortunes/speed.json.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { watchOtherCpu } from '@kernel-attention/cli/cpu';
import { train } from '@kernel-attention/performer';
import * as tf from '@tensorflow/tfjs-core';
import { createModel, trainBatch, writeResults } from './common.js';

export const SPEED_MODELS = ['transformer', 'favor-positive', 'favor-hyperbolic', 'performer-relu'];
export const SPEED_LENGTHS = [512, 1024, 2048, 4096];

export interface SpeedCell {
  model: string;
  length: number;
  trainTokensPerSecond: number | null;
  inferTokensPerSecond: number | null;
  trainStepMs: number | null;
  inferMs: number | null;
  error: string | null;
  otherCores: number | null;
}

function emptyCell(model: string, length: number): SpeedCell {
  return {
    model,
    length,
    trainTokensPerSecond: null,
    inferTokensPerSecond: null,
    trainStepMs: null,
    inferMs: null,
    error: null,
    otherCores: null,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One cell, in this process. */
export async function speedCell(model: string, length: number): Promise<SpeedCell> {
  const cpu = watchOtherCpu();
  const m = createModel(model, length);
  const batch = trainBatch(0, length, 1);
  const cell = emptyCell(model, length);
  try {
    const infer: number[] = [];
    for (let r = 0; r < 4; r++) {
      const t0 = performance.now();
      const out = m.logits(batch.inputs);
      await out.data();
      out.dispose();
      if (r > 0) infer.push(performance.now() - t0);
    }
    cell.inferMs = median(infer);
    cell.inferTokensPerSecond = length / (cell.inferMs / 1000);
    const optimizer = tf.train.adam(1e-3);
    const steps: number[] = [];
    await train(m, {
      steps: 4,
      batch: () => batch,
      optimizer,
      progress: false,
      callbacks: {
        onStepEnd: () => {
          steps.push(performance.now());
        },
      },
    });
    optimizer.dispose();
    const durations = steps.slice(1).map((t, i) => t - steps[i]!); // the first step warms up
    cell.trainStepMs = median(durations);
    cell.trainTokensPerSecond = length / (cell.trainStepMs / 1000);
  } catch (e) {
    cell.error = (e as Error).message.split('\n')[0]!.slice(0, 200);
  }
  cell.otherCores = cpu.stop().otherCores;
  return cell;
}

/** Every cell, each in a child process (this file run with `cell <model> <L>`). */
export function speedExperiment(): void {
  const cells: SpeedCell[] = [];
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  for (const length of SPEED_LENGTHS) {
    for (const model of SPEED_MODELS) {
      let cell: SpeedCell;
      try {
        const out = execFileSync(
          process.execPath,
          [...process.execArgv, main, 'speed-cell', model, String(length)],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 },
        );
        cell = JSON.parse(out.trim().split('\n').at(-1)!) as SpeedCell;
      } catch (e) {
        const msg = String((e as { stderr?: string }).stderr ?? e);
        const line = msg.split('\n').find((l) => /Error|memory/.test(l)) ?? msg.split('\n')[0]!;
        cell = { ...emptyCell(model, length), error: line.slice(0, 200) };
      }
      cells.push(cell);
      process.stderr.write(
        `${model} L=${length}: train ${cell.trainTokensPerSecond?.toFixed(0) ?? '-'} tok/s, infer ${cell.inferTokensPerSecond?.toFixed(0) ?? '-'} tok/s${cell.error ? ` (${cell.error})` : ''}, other cores ${cell.otherCores?.toFixed(2) ?? '?'}\n`,
      );
      writeResults('speed', {
        setup:
          'batch 1, fresh weights, d_model 128, 4 layers, 4 heads, FAVOR m = 128 features per head; training step = forward + backward + Adam update; median of 3 after a warm-up',
        backend: `wasm (tfjs 4.22, Node ${process.version}, 1 thread)`,
        date: new Date().toISOString(),
        cells,
      });
    }
  }
}
