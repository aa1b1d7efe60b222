import * as tf from '@tensorflow/tfjs-core';
import type { FeatureMap, FeatureRole, KeyParts } from './feature-map.js';
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

  private compute(x: tf.Tensor, role: FeatureRole, withFloor: boolean): tf.Tensor {
    assertRole(this.name, role);
    return tf.tidy(() => {
      const { u, n } = this.exponents(x);
      const m = this.numFeatures;
      const logRatio = -0.5 * Math.log(m); // r = m^-1/2 folded into the exponent
      const outShape = [...x.shape.slice(0, -1), m];
      let shift: tf.Tensor; // per-row (query) or per-row + per-group (key) amount subtracted from u
      let u3: tf.Tensor = u;
      if (!this.stabilize) {
        shift = tf.sub(n, logRatio);
      } else if (role === 'query') {
        shift = tf.sub(tf.add(n, tf.max(u, -1, true)), logRatio);
      } else {
        const { groups, length } = groupsOf(x);
        u3 = tf.reshape(u, [groups, length, m]);
        const s = tf.max(u3, [1, 2], true); // [G, 1, 1]
        shift = tf.sub(tf.add(tf.reshape(n, [groups, length, 1]), s), logRatio);
      }
      let phi = tf.exp(tf.sub(u3, shift));
      if (withFloor && this.eps > 0) phi = tf.add(phi, this.eps * Math.exp(logRatio));
      return tf.reshape(phi, outShape);
    });
  }

  keyParts(x: tf.Tensor): KeyParts {
    const parts = tf.tidy(() => {
      const { u, n } = this.exponents(x);
      const m = this.numFeatures;
      const logRatio = -0.5 * Math.log(m);
      const rowMax = this.stabilize ? tf.max(u, -1, true) : tf.zerosLike(n);
      const base = tf.exp(tf.sub(u, tf.sub(tf.add(n, rowMax), logRatio)));
      const lead = x.shape.slice(0, -1);
      return {
        base: tf.reshape(base, [...lead, m]),
        logScale: tf.reshape(rowMax, [...lead, 1]),
        floor: this.eps * Math.exp(logRatio),
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
