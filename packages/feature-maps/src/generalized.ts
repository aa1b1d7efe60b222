import * as tf from '@tensorflow/tfjs-core';
import { assertRole } from './exp-features.js';
import type { FeatureMap, FeatureRole } from './feature-map.js';
import { expBelow } from './packed-lanes.js';
import { type Projection, ProjectionHolder } from './projection.js';
import { assertOptions, assertTensor, shapeString } from './validate.js';
import { describe } from './validate-number.js';

/** Built-in kernel functions f of generalized attention, or your own (tfjs ops, differentiable). */
export type KernelFunction = 'relu' | 'elu+1' | 'exp' | ((t: tf.Tensor) => tf.Tensor);

export interface GeneralizedOptions {
  /** W [m, d]; null or omitted for the deterministic map φ(x) = f(x̂) + kernelEps. */
  projection?: Projection | null;
  fn: KernelFunction;
  /** Added to every feature (keeps denominators positive); default 1e-3 as in the Performer code. */
  kernelEps?: number;
  /** Input dimension d; required to know numFeatures of a map without projection before first use. */
  inputDim?: number;
}

function kernelFn(fn: KernelFunction): (t: tf.Tensor) => tf.Tensor {
  if (typeof fn === 'function') return fn;
  switch (fn) {
    case 'relu':
      return (t) => tf.relu(t);
    case 'elu+1':
      return (t) => tf.add(tf.elu(t), 1);
    case 'exp':
      return (t) => tf.exp(t); // stabilized by the caller, see generalized()
    default:
      throw new RangeError(
        `generalized: fn must be 'relu', 'elu+1', 'exp' or a function, got ${describe(fn)}`,
      );
  }
}

/**
 * Generalized kernelizable attention (Choromanski et al. 2020, section 2.2; "deterministic"
 * when there is no projection): φ(x) = f(W·x̂) + kernelEps, or φ(x) = f(x̂) + kernelEps without
 * a projection, x̂ = d^-1/4·x. No m^-1/2 ratio. 'relu', 'elu+1' and user functions are
 * position-local; 'exp' is stabilized like positiveSoftmax (exp(t − s), s the row max for queries
 * and the max over positions and features per (batch, head) for keys, factors that cancel in
 * attention up to kernelEps) so that large inputs give finite features instead of overflow.
 *
 * @param opts - `{ fn, projection or inputDim, kernelEps }` (see GeneralizedOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { generalized } from '@kernel-attention/feature-maps';
 * const relu = generalized({ fn: 'relu', inputDim: 64 });            // deterministic, 64 features
 * const custom = generalized({ fn: (t) => tf.square(t), inputDim: 64 }); // your own f
 * ```
 */
export function generalized(opts: GeneralizedOptions): FeatureMap & { dispose(): void } {
  assertOptions('generalized', opts, '{ fn, projection?, kernelEps? }');
  const name = 'generalized';
  const f = kernelFn(opts.fn);
  const kernelEps = opts.kernelEps ?? 1e-3;
  if (!(Number.isFinite(kernelEps) && kernelEps >= 0)) {
    throw new RangeError(
      `${name}: kernelEps must be a finite number >= 0, got ${describe(opts.kernelEps)}`,
    );
  }
  const holder = opts.projection == null ? null : new ProjectionHolder(name, opts.projection);
  let dim: number | undefined = holder?.cols ?? opts.inputDim;
  if (dim !== undefined && !(Number.isInteger(dim) && dim > 0)) {
    throw new RangeError(`${name}: inputDim must be a positive integer, got ${describe(dim)}`);
  }
  if (holder !== null && opts.inputDim !== undefined && opts.inputDim !== holder.cols) {
    throw new RangeError(
      `${name}: inputDim ${opts.inputDim} does not match the projection's ${holder.cols} columns`,
    );
  }
  const fnLabel = typeof opts.fn === 'function' ? 'custom' : opts.fn;
  const stabilizedExp = opts.fn === 'exp';
  const compute = (x: tf.Tensor, role: FeatureRole, withFloor: boolean): tf.Tensor => {
    assertRole(name, role);
    return tf.tidy(() => {
      let pre: tf.Tensor;
      if (holder !== null) {
        pre = tf.reshape(holder.project(`${name}.features`, x), [
          ...x.shape.slice(0, -1),
          holder.rows,
        ]);
      } else {
        assertTensor(
          `${name}.features`,
          'x',
          x,
          { rank: [2, 99], dtype: 'float32' },
          '[..., length, dim]',
        );
        const d = x.shape[x.rank - 1]!;
        if (dim !== undefined && d !== dim) {
          throw new RangeError(
            `${name}.features: x must have last dimension ${dim}, got shape ${shapeString(x.shape)}`,
          );
        }
        dim = d;
        pre = tf.mul(x, d ** -0.25);
      }
      const out = stabilizedExp ? expStabilized(pre, role) : f(pre);
      if (
        !out ||
        out.shape.length !== pre.shape.length ||
        out.shape.some((s, i) => s !== pre.shape[i])
      ) {
        throw new RangeError(
          `${name}.features: fn must return a tensor of its input's shape ${shapeString(pre.shape)}, got ${out ? shapeString(out.shape) : String(out)}`,
        );
      }
      return withFloor && kernelEps > 0 ? tf.add(out, kernelEps) : out;
    });
  };
  return {
    name: `${name}(${fnLabel})`,
    get numFeatures(): number {
      if (holder !== null) return holder.rows;
      if (dim === undefined) {
        throw new Error(
          `${name}: numFeatures is unknown for a map without projection until it sees an input; pass inputDim`,
        );
      }
      return dim;
    },
    floor: kernelEps,
    features: (x: tf.Tensor, role: FeatureRole) => compute(x, role, true),
    featuresWithoutFloor: (x: tf.Tensor, role: FeatureRole) => compute(x, role, false),
    ...(stabilizedExp
      ? {
          keyParts: (x: tf.Tensor) => {
            const parts = tf.tidy(() => {
              const pre =
                holder !== null
                  ? holder.project(`${name}.keyParts`, x)
                  : tf.mul(
                      tf.reshape(x, [-1, x.shape[x.rank - 1]!]),
                      x.shape[x.rank - 1]! ** -0.25,
                    );
              const rowMax = tf.max(pre, -1, true);
              const lead = x.shape.slice(0, -1);
              return {
                base: tf.reshape(expBelow(pre, rowMax), [...lead, pre.shape[1]!]),
                logScale: tf.reshape(rowMax, [...lead, 1]),
                floor: kernelEps,
              };
            });
            return parts;
          },
        }
      : {}),
    dispose: () => holder?.dispose(),
  };
}

/** exp(t − s) with the stabilizers of positive features (row max for queries, per-group max for keys). */
function expStabilized(t: tf.Tensor, role: FeatureRole): tf.Tensor {
  if (role === 'query') return expBelow(t, tf.max(t, -1, true));
  const axes = t.rank >= 2 ? [t.rank - 2, t.rank - 1] : [t.rank - 1];
  return expBelow(t, tf.max(t, axes, true));
}
