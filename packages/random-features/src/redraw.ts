import type { Matrix } from './matrix.js';
import { createRng } from './rng.js';
import { gaussianIid, gaussianOrthogonal, type RowScaling } from './samplers.js';
import { assertNonNegativeInt, assertOptions, assertPositiveInt, describe } from './validate.js';

export interface RedrawScheduleOptions {
  /** Base seed; the projection of window w is drawn from createRng(seed).fold(w). */
  seed: number;
  /** A new projection every `every` steps (steps 0..every-1 share window 0). */
  every: number;
  rows: number;
  cols: number;
  /** 'orthogonal' (default) or 'iid'. */
  kind?: 'orthogonal' | 'iid';
  scaling?: RowScaling;
}

export interface RedrawSchedule {
  readonly every: number;
  /**
   * Window index floor(step / every).
   *
   * @param step - a training step (≥ 0)
   */
  windowAt(step: number): number;
  /**
   * True when `step` starts a new window (step % every === 0).
   *
   * @param step - a training step (≥ 0)
   */
  isRedrawStep(step: number): boolean;
  /**
   * The projection in force at `step`: a pure function of (seed, windowAt(step)).
   *
   * @param step - a training step (≥ 0)
   */
  projectionAt(step: number): Matrix;
}

/**
 * A deterministic feature-redraw schedule: a new projection every N steps, derived from
 * (seed, step window) alone, so training restarted at any step draws the same features.
 *
 * @param opts - `{ seed, every, rows, cols, orthogonal, scaling }` (see RedrawScheduleOptions)
 *
 * @example
 * ```ts
 * import { redrawSchedule } from '@kernel-attention/random-features';
 * const s = redrawSchedule({ seed: 3, every: 1000, rows: 256, cols: 64 });
 * const w = s.projectionAt(2500); // window 2, same matrix every time
 * ```
 */
export function redrawSchedule(opts: RedrawScheduleOptions): RedrawSchedule {
  const fn = 'redrawSchedule';
  assertOptions(fn, opts, '{ seed, every, rows, cols }');
  if (!Number.isSafeInteger(opts.seed))
    throw new RangeError(`${fn}: seed must be a safe integer, got ${describe(opts.seed)}`);
  assertPositiveInt(fn, 'every', opts.every);
  assertPositiveInt(fn, 'rows', opts.rows);
  assertPositiveInt(fn, 'cols', opts.cols);
  const kind = opts.kind ?? 'orthogonal';
  if (kind !== 'orthogonal' && kind !== 'iid') {
    throw new RangeError(`${fn}: kind must be 'orthogonal' or 'iid', got ${describe(kind)}`);
  }
  const base = createRng(opts.seed);
  let cached: { window: number; matrix: Matrix } | null = null;
  const windowAt = (step: number): number => {
    assertNonNegativeInt(fn, 'step', step);
    return Math.floor(step / opts.every);
  };
  return {
    every: opts.every,
    windowAt,
    isRedrawStep: (step) => {
      assertNonNegativeInt(fn, 'step', step);
      return step % opts.every === 0;
    },
    projectionAt: (step) => {
      const window = windowAt(step);
      if (cached?.window !== window) {
        const rng = base.fold(window);
        const matrix =
          kind === 'iid'
            ? gaussianIid(opts.rows, opts.cols, { rng })
            : gaussianOrthogonal(opts.rows, opts.cols, { rng, scaling: opts.scaling ?? 'chi' });
        cached = { window, matrix };
      }
      return cached.matrix;
    },
  };
}
