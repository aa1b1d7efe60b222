import { redrawSchedule } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import type { PerformerLM } from '../models/performer-lm/performer-lm.js';

export interface TrainBatch {
  inputs: number[][];
  targets: number[][];
  /** Per-position loss weights (default 1 everywhere). */
  weights?: number[][];
}

export interface TrainLogs {
  step: number;
  loss: number;
  /** Steps per second so far. */
  stepsPerSecond: number;
}

export interface TrainCallbacks {
  /**
   * @param logs - the step, its loss and the speed so far
   */
  onStepEnd?(logs: TrainLogs): void | Promise<void>;
  /**
   * @param logs - the last step's logs
   */
  onTrainEnd?(logs: TrainLogs): void | Promise<void>;
}

export interface TrainOptions {
  steps: number;
  /** The batch of step `step` (a pure function of it makes runs reproducible). */
  batch: (step: number) => TrainBatch;
  /** Default: Adam with `learningRate`. */
  optimizer?: tf.Optimizer;
  /** Adam's learning rate when no optimizer is given (default 1e-3). */
  learningRate?: number;
  /**
   * Feature redraw: new FAVOR+ projections every `every` steps, drawn from (seed, layer, window)
   * alone (deterministic: a run restarted at any step draws the same features). Default off; the
   * model keeps the last projections afterwards (inference does not redraw).
   */
  redraw?: { every: number; seed: number };
  callbacks?: TrainCallbacks;
  /**
   * Progress: by default a bar on stderr when stderr is a terminal, and nothing otherwise (logs,
   * CI, pipes); `true` writes to stderr in any case; a stream gets a bar redrawn in place when it
   * is a terminal (`isTTY`), else ten lines over the run; `false` writes nothing.
   */
  progress?: boolean | { write(s: string): unknown; isTTY?: boolean };
}

function progressBar(done: number, total: number, logs: TrainLogs): string {
  const width = 24;
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} loss ${logs.loss.toFixed(4)} ${logs.stepsPerSecond.toFixed(1)} steps/s`;
}

/**
 * Trains `model` on next-token prediction with a tfjs optimizer: one `optimizer.minimize` per step
 * on model.loss(batch), optional feature redraw on a deterministic schedule, callbacks after each
 * step, and a progress bar in the terminal. Returns the loss of every step.
 *
 * @param model - the PerformerLM to train (its weights change in place)
 * @param opts - `{ steps, batch, learningRate, optimizer, redraw, callbacks, progress }` (see TrainOptions)
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs'; // gradient functions
 * import { PerformerLM, copyTaskBatch, train } from '@kernel-attention/performer';
 * const model = PerformerLM.create({ numTokens: 8, maxSeqLen: 17, dim: 16, depth: 1, heads: 2, nbFeatures: 8 });
 * const losses = await train(model, {
 *   steps: 5, // the copy task needs about 500 to reach 99.9 %
 *   batch: (s) => copyTaskBatch({ batchSize: 4, length: 8, vocab: 8, seed: s }),
 * });
 * ```
 */
export async function train(model: PerformerLM, opts: TrainOptions): Promise<number[]> {
  const fn = 'train';
  if (!Number.isInteger(opts?.steps) || opts.steps < 1) {
    throw new RangeError(`${fn}: steps must be a positive integer, got ${String(opts?.steps)}`);
  }
  if (typeof opts.batch !== 'function')
    throw new TypeError(`${fn}: batch must be a function of the step`);
  if (tf.getGradient('RealDiv') === undefined) {
    throw new Error(
      `${fn}: tfjs's gradient functions are not registered: import '@tensorflow/tfjs' (Node) or '@tensorflow/tfjs-core/dist/register_all_gradients' (a bundler) before training`,
    );
  }
  const variables = model.trainableVariables();
  if (variables.length === 0) {
    throw new Error(`${fn}: the model has no trainable variables (weights loaded as constants?)`);
  }
  const optimizer = opts.optimizer ?? tf.train.adam(opts.learningRate ?? 1e-3);
  const { depth, nbFeatures, dimHead } = model.config;
  const schedules = opts.redraw
    ? Array.from({ length: depth }, (_, layer) =>
        redrawSchedule({
          seed: opts.redraw!.seed * 1009 + layer,
          every: opts.redraw!.every,
          rows: nbFeatures,
          cols: dimHead,
        }),
      )
    : null;
  const stderr =
    (globalThis as { process?: { stderr?: { write(s: string): unknown; isTTY?: boolean } } })
      .process?.stderr ?? null;
  const stream =
    opts.progress === false
      ? null
      : opts.progress === true
        ? stderr
        : opts.progress === undefined
          ? stderr?.isTTY === true
            ? stderr
            : null
          : opts.progress;
  const tty = stream?.isTTY === true;
  const losses: number[] = [];
  const t0 = performance.now();
  let logs: TrainLogs = { step: 0, loss: Number.NaN, stepsPerSecond: 0 };
  for (let step = 0; step < opts.steps; step++) {
    if (schedules && schedules[0]!.isRedrawStep(step)) {
      model.setProjections(schedules.map((s) => s.projectionAt(step)));
    }
    const { inputs, targets, weights } = opts.batch(step);
    const cost = optimizer.minimize(() => model.loss(inputs, targets, weights), true, variables);
    const loss = (await cost!.data())[0]!;
    cost!.dispose();
    if (!Number.isFinite(loss)) throw new Error(`${fn}: the loss became ${loss} at step ${step}`);
    losses.push(loss);
    logs = { step, loss, stepsPerSecond: (step + 1) / ((performance.now() - t0) / 1000) };
    await opts.callbacks?.onStepEnd?.(logs);
    if (
      stream &&
      (tty ||
        (step + 1) % Math.max(1, Math.floor(opts.steps / 10)) === 0 ||
        step + 1 === opts.steps)
    ) {
      stream.write(
        `${tty ? '\r' : ''}${progressBar(step + 1, opts.steps, logs)}${tty ? '' : '\n'}`,
      );
    }
  }
  if (stream && tty) stream.write('\n');
  await opts.callbacks?.onTrainEnd?.(logs);
  if (!opts.optimizer) optimizer.dispose();
  return losses;
}
