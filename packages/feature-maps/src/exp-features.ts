import * as tf from '@tensorflow/tfjs-core';
import type { FactoredFeatures, FeatureMap, FeatureRole, KeyParts } from './feature-map.js';
import { fusedPositiveFeatures } from './fused-features.js';
import { hasFusedKernel, PositiveFeatures } from './kernel-names.js';
import { type Projection, ProjectionHolder } from './projection.js';
import { describe } from './validate-number.js';

export interface ExpFeatureOptions {
  /** W [m, d]: Float64 Matrix (uploaded once per backend) or a tfjs tensor (trainable). */
  projection: Projection;
  /** Added to every feature before the m^-1/2 ratio; default 1e-6 (the Python reference uses 1e-4). */
  eps?: number;
  /**
   * Subtract the stabilizers (default true). With false the map computes the textbook
   * features exactly (s = 0): unbiased φ(x)·φ(y) ≈ exp(x·y/√d), but exp may overflow.
   */
  stabilize?: boolean;
}

/** ½·|x̂|² per row, [N, 1], for x reshaped to [N, d] and x̂ = c·x. */
export function halfSquaredNorm(x2: tf.Tensor2D, c: number): tf.Tensor2D {
  return tf.mul(tf.sum(tf.square(x2), -1, true), 0.5 * c * c) as tf.Tensor2D;
}

/** Number of independent (batch, head, ...) groups and the length L of x [..., L, d]. */
export function groupsOf(x: tf.Tensor): { groups: number; length: number } {
  const length = x.rank >= 2 ? x.shape[x.rank - 2]! : 1;
  return { groups: length === 0 ? 0 : x.size / x.shape[x.rank - 1]! / length, length };
}

/**
 * The exponential maps of FAVOR+: φ(x) = r · (exp(a(x) − s) + eps) with a(x) = u − ½|x̂|²,
 * u = x̂·Wᵀ (positive) or [u, −u] (hyperbolic), r = (numFeatures)^-1/2.
 * Stabilizer s (DESIGN.md): queries, max over the feature axis of u per row; keys, max over
 * features and positions per (batch, head) — the max runs over the last two axes only, so it
 * never mixes batches or heads.
 */
export class ExpFeatureMap implements FeatureMap {
  readonly name: string;
  readonly numFeatures: number;
  readonly eps: number;
  readonly stabilize: boolean;
  private readonly holder: ProjectionHolder;
  private readonly symmetric: boolean;

  constructor(name: string, opts: ExpFeatureOptions, symmetric: boolean) {
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError(`${name}: options { projection } are required`);
    this.name = name;
    this.holder = new ProjectionHolder(name, opts.projection);
    this.symmetric = symmetric;
    this.numFeatures = symmetric ? 2 * this.holder.rows : this.holder.rows;
    this.eps = opts.eps ?? 1e-6;
    if (!(Number.isFinite(this.eps) && this.eps >= 0)) {
      throw new RangeError(`${name}: eps must be a finite number >= 0, got ${describe(opts.eps)}`);
    }
    this.stabilize = opts.stabilize ?? true;
  }

  /** Input dimension d. */
  get dim(): number {
    return this.holder.cols;
  }

  /** u (or [u, −u]) as [N, m'] and ½|x̂|² as [N, 1]. */
  private exponents(x: tf.Tensor): { u: tf.Tensor2D; n: tf.Tensor2D } {
    const u0 = this.holder.project(`${this.name}.features`, x);
    const u = this.symmetric ? (tf.concat([u0, tf.neg(u0)], 1) as tf.Tensor2D) : u0;
    const x2 = tf.reshape(x, [-1, this.holder.cols]) as tf.Tensor2D;
    return { u, n: halfSquaredNorm(x2, this.holder.normalizer) };
  }

  /** eps·(numFeatures)^-1/2, the constant part of every feature. */
  get floor(): number {
    return this.eps / Math.sqrt(this.numFeatures);
  }

  features(x: tf.Tensor, role: FeatureRole): tf.Tensor {
    return this.compute(x, role, true);
  }

  featuresWithoutFloor(x: tf.Tensor, role: FeatureRole): tf.Tensor {
    return this.compute(x, role, false);
  }

  /**
   * φ(x) = scale ⊙ rows + floor with rows = softmax(u) over the feature axis and scale one factor
   * per row: exp(u − ℓ) = Z·softmax(u) for the row max ℓ and Z = 1 / max softmax(u), so
   *   query: φ = m'^-1/2·(e^{−½|x̂|²}·Z)·rows + floor              (s = ℓ)
   *   key:   φ = m'^-1/2·(e^{ℓ − s − ½|x̂|²}·Z)·rows + floor        (s = max ℓ over the group)
   * tfjs-wasm's softmax kernel is vectorized, its exp is not: this form costs a third of
   * max + subtract + exp, and attention can apply `scale` to its small products.
   */
  factoredFeatures(x: tf.Tensor, role: FeatureRole): FactoredFeatures {
    assertRole(this.name, role);
    const out = tf.tidy(() => {
      const { rows, logScale } = this.factored(x, role);
      const lead = x.shape.slice(0, -1);
      return {
        rows: tf.reshape(rows, [...lead, this.numFeatures]),
        scale: tf.reshape(tf.exp(logScale), [...lead, 1]),
        floor: this.floor,
      };
    });
    return out;
  }

  /** rows = softmax(u) [N, m'] and log of the per-row factor (see factoredFeatures) [N, 1]. */
  private factored(
    x: tf.Tensor,
    role: FeatureRole,
    withRowMax = false,
  ): { rows: tf.Tensor2D; logScale: tf.Tensor2D; rowMax: tf.Tensor2D | null } {
    const { u, n } = this.exponents(x);
    const logRatio = -0.5 * Math.log(this.numFeatures);
    const rows = tf.softmax(u) as tf.Tensor2D;
    const logZ = tf.neg(tf.log(tf.max(rows, -1, true))); // softmax's max entry is e^0 / Z
    // ℓ, the row max of u: stabilized query features do not need it (s = ℓ cancels), so skip the pass
    const needRowMax = withRowMax || !this.stabilize || role === 'key';
    const rowMax = needRowMax ? (tf.max(u, -1, true) as tf.Tensor2D) : null;
    let logScale = tf.add(tf.sub(logZ, n), logRatio); // query: s = ℓ cancels against exp(u − ℓ)
    if (!this.stabilize) {
      logScale = tf.add(logScale, rowMax!); // s = 0
    } else if (role === 'key') {
      const { groups, length } = groupsOf(x);
      const ell = tf.reshape(rowMax!, [groups, length, 1]);
      const s = tf.max(ell, [1, 2], true); // per (batch, head) group
      logScale = tf.add(logScale, tf.reshape(tf.sub(ell, s), [-1, 1]));
    }
    return { rows, logScale: logScale as tf.Tensor2D, rowMax };
  }

  private compute(x: tf.Tensor, role: FeatureRole, withFloor: boolean): tf.Tensor {
    assertRole(this.name, role);
    if (hasFusedKernel(PositiveFeatures) && x.size > 0) return this.fused(x, role, withFloor);
    return tf.tidy(() => {
      const { rows, logScale } = this.factored(x, role);
      let phi = tf.mul(rows, tf.exp(logScale));
      if (withFloor && this.eps > 0) phi = tf.add(phi, this.floor);
      return tf.reshape(phi, [...x.shape.slice(0, -1), this.numFeatures]);
    });
  }

  /** The same features from the fused kernel a backend registered (see kernel-names.ts). */
  private fused(x: tf.Tensor, role: FeatureRole, withFloor: boolean): tf.Tensor {
    const fn = `${this.name}.features`;
    this.holder.assertInput(fn, x);
    return tf.tidy(() => {
      const { groups, length } = groupsOf(x);
      const c = this.holder.normalizer;
      const phi = fusedPositiveFeatures(
        tf.reshape(x, [groups, length, this.holder.cols]),
        this.holder.scaledTransposed(), // a cached operand is kept, so this tidy leaves it alone
        {
          stabilizer: !this.stabilize ? 'none' : role === 'query' ? 'row' : 'group',
          symmetric: this.symmetric,
          halfNormScale: 0.5 * c * c,
          logRatio: -0.5 * Math.log(this.numFeatures),
          floor: withFloor ? this.floor : 0,
        },
      );
      return tf.reshape(phi, [...x.shape.slice(0, -1), this.numFeatures]);
    });
  }

  keyParts(x: tf.Tensor): KeyParts {
    const parts = tf.tidy(() => {
      // φ(k_j; s) = e^{ℓ_j − s}·base_j + floor with base = m'^-1/2·e^{−½|x̂|²}·Z·rows (the query form)
      const { rows, logScale, rowMax: ell0 } = this.factored(x, 'query', true);
      const rowMax = ell0!;
      const lead = x.shape.slice(0, -1);
      const ell = this.stabilize ? rowMax : tf.zerosLike(rowMax);
      const baseLog = this.stabilize ? logScale : tf.add(logScale, rowMax);
      return {
        base: tf.reshape(tf.mul(rows, tf.exp(baseLog)), [...lead, this.numFeatures]),
        logScale: tf.reshape(ell, [...lead, 1]),
        floor: this.floor,
      };
    });
    return parts;
  }

  dispose(): void {
    this.holder.dispose();
  }
}

export function assertRole(name: string, role: unknown): asserts role is FeatureRole {
  if (role !== 'query' && role !== 'key') {
    throw new RangeError(`${name}.features: role must be 'query' or 'key', got ${describe(role)}`);
  }
}
