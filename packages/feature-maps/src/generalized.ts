import * as tf from '@tensorflow/tfjs-core';
import { assertRole } from './exp-features.js';
import type { FeatureMap, FeatureRole, KeyParts } from './feature-map.js';
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
  return new GeneralizedMap(opts);
}

/** See generalized(). */
class GeneralizedMap implements FeatureMap {
  readonly name: string;
  readonly floor: number;
  /** The exp kernel only: key features as e^{ℓ_j}·base_j, for attention's own stabilizer. */
  readonly keyParts?: (x: tf.Tensor) => KeyParts;
  private readonly f: (t: tf.Tensor) => tf.Tensor;
  private readonly holder: ProjectionHolder | null;
  private readonly stabilizedExp: boolean;
  /** d, known from the projection or inputDim, else learnt from the first input. */
  private dim: number | undefined;

  constructor(opts: GeneralizedOptions) {
    const name = 'generalized';
    this.f = kernelFn(opts.fn);
    const kernelEps = opts.kernelEps ?? 1e-3;
    if (!(Number.isFinite(kernelEps) && kernelEps >= 0)) {
      throw new RangeError(
        `${name}: kernelEps must be a finite number >= 0, got ${describe(opts.kernelEps)}`,
      );
    }
    this.floor = kernelEps;
    this.holder = opts.projection == null ? null : new ProjectionHolder(name, opts.projection);
    this.dim = this.holder?.cols ?? opts.inputDim;
    if (this.dim !== undefined && !(Number.isInteger(this.dim) && this.dim > 0)) {
      throw new RangeError(
        `${name}: inputDim must be a positive integer, got ${describe(this.dim)}`,
      );
    }
    if (this.holder !== null && opts.inputDim !== undefined && opts.inputDim !== this.holder.cols) {
      throw new RangeError(
        `${name}: inputDim ${opts.inputDim} does not match the projection's ${this.holder.cols} columns`,
      );
    }
    this.name = `${name}(${typeof opts.fn === 'function' ? 'custom' : opts.fn})`;
    this.stabilizedExp = opts.fn === 'exp';
    if (this.stabilizedExp) this.keyParts = (x) => this.expKeyParts(x);
  }

  get numFeatures(): number {
    if (this.holder !== null) return this.holder.rows;
    if (this.dim === undefined) {
      throw new Error(
        'generalized: numFeatures is unknown for a map without projection until it sees an input; pass inputDim',
      );
    }
    return this.dim;
  }

  features(x: tf.Tensor, role: FeatureRole): tf.Tensor {
    return this.compute(x, role, true);
  }

  featuresWithoutFloor(x: tf.Tensor, role: FeatureRole): tf.Tensor {
    return this.compute(x, role, false);
  }

  dispose(): void {
    this.holder?.dispose();
  }

  /** W·x̂ (or x̂ without a projection) [..., L, m], the input checked. */
  private preactivation(x: tf.Tensor): tf.Tensor {
    const fn = 'generalized.features';
    if (this.holder !== null) {
      return tf.reshape(this.holder.project(fn, x), [...x.shape.slice(0, -1), this.holder.rows]);
    }
    assertTensor(fn, 'x', x, { rank: [2, 99], dtype: 'float32' }, '[..., length, dim]');
    const d = x.shape[x.rank - 1]!;
    if (this.dim !== undefined && d !== this.dim) {
      throw new RangeError(
        `${fn}: x must have last dimension ${this.dim}, got shape ${shapeString(x.shape)}`,
      );
    }
    this.dim = d;
    return tf.mul(x, d ** -0.25);
  }

  private compute(x: tf.Tensor, role: FeatureRole, withFloor: boolean): tf.Tensor {
    assertRole('generalized', role);
    return tf.tidy(() => {
      const pre = this.preactivation(x);
      const out = this.stabilizedExp ? expStabilized(pre, role) : this.f(pre);
      if (
        !out ||
        out.shape.length !== pre.shape.length ||
        out.shape.some((s, i) => s !== pre.shape[i])
      ) {
        throw new RangeError(
          `generalized.features: fn must return a tensor of its input's shape ${shapeString(pre.shape)}, got ${out ? shapeString(out.shape) : String(out)}`,
        );
      }
      return withFloor && this.floor > 0 ? tf.add(out, this.floor) : out;
    });
  }

  private expKeyParts(x: tf.Tensor): KeyParts {
    return tf.tidy(() => {
      const pre =
        this.holder !== null
          ? this.holder.project('generalized.keyParts', x)
          : tf.mul(tf.reshape(x, [-1, x.shape[x.rank - 1]!]), x.shape[x.rank - 1]! ** -0.25);
      const rowMax = tf.max(pre, -1, true);
      const lead = x.shape.slice(0, -1);
      return {
        base: tf.reshape(expBelow(pre, rowMax), [...lead, pre.shape[1]!]),
        logScale: tf.reshape(rowMax, [...lead, 1]),
        floor: this.floor,
      };
    });
  }
}

/** exp(t − s) with the stabilizers of positive features (row max for queries, per-group max for keys). */
function expStabilized(t: tf.Tensor, role: FeatureRole): tf.Tensor {
  if (role === 'query') return expBelow(t, tf.max(t, -1, true));
  const axes = t.rank >= 2 ? [t.rank - 2, t.rank - 1] : [t.rank - 1];
  return expBelow(t, tf.max(t, axes, true));
}
