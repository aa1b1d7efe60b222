import type { Matrix } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import type { FactoredFeatures, FeatureMap, FeatureRole, KeyParts } from './feature-map.js';
import { fusedPositiveFeatures } from './fused-features.js';
import { hasFusedKernel, PositiveFeatures } from './kernel-names.js';
import { type Projection, ProjectionHolder } from './projection.js';
import { describe } from './validate-number.js';

export interface ExpFeatureOptions {
  /** W [m, d]: Float64 Matrix (uploaded once per backend) or a tfjs tensor (trainable). */
  projection: Projection;
  /**
   * Added to every feature before the m^-1/2 ratio; default 1e-6 (the Python reference uses 1e-4).
   * It is added on the stabilized scale (the largest feature of each query, and of the keys a
   * query sees, is 1 before the ratio), so it is a floor relative to the largest feature.
   */
  eps?: number;
  /**
   * Subtract the stabilizers (default true). With false the map computes the textbook
   * features exactly (s = 0): unbiased φ(x)·φ(y) ≈ exp(x·y/√d), but exp may overflow.
   */
  stabilize?: boolean;
  /**
   * 'performer-pytorch': that library's stabilizers, for loading its checkpoints — the maxima are
   * taken over u alone (not u − ½|x̂|²), and the key stabilizer is the maximum over the whole
   * sequence, also in causal attention (`keyStabilizer: 'global'`), so with eps > 0 later keys move
   * earlier causal outputs. Default: none (the exactly causal stabilizers of DESIGN.md).
   */
  compatibility?: 'performer-pytorch';
}

/** Plain-data options of a positive or hyperbolic map (see ExpFeatureMap.spec). */
export interface ExpFeatureSpec extends ExpFeatureOptions {
  name: 'positiveSoftmax' | 'hyperbolicSoftmax';
  projection: Matrix;
  eps: number;
  stabilize: boolean;
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

/** How one map stabilizes its features (see ExpFeatureMap). */
type Mode = 'exact' | 'performer-pytorch' | 'none';

/**
 * The exponential maps of FAVOR+: φ(x) = r · (exp(a(x) − s) + eps) with a(x) = u − ½|x̂|²,
 * u = x̂·Wᵀ (positive) or [u, −u] (hyperbolic), r = (numFeatures)^-1/2.
 * Stabilizers (DESIGN.md): s = the largest exponent — per row for queries (max_f a_f), over the
 * keys each query sees for keys (max_j max_f a_jf; `features(k, 'key')` takes all keys of one
 * (batch, head), over the last two axes only, so it never mixes batches or heads). Attention
 * stabilizes keys itself from `keyParts` (base_j = r·exp(a_j − ℓ_j), ℓ_j = max_f a_jf), with a
 * running maximum when causal. `compatibility: 'performer-pytorch'` takes the maxima over u alone
 * and the whole sequence for keys.
 */
export class ExpFeatureMap implements FeatureMap {
  readonly name: string;
  readonly numFeatures: number;
  readonly eps: number;
  readonly stabilize: boolean;
  readonly keyStabilizer: 'visible' | 'global';
  private readonly mode: Mode;
  private readonly holder: ProjectionHolder;
  private readonly symmetric: boolean;

  constructor(name: string, opts: ExpFeatureOptions, symmetric: boolean) {
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError(`${name}: options { projection } are required, got ${describe(opts)}`);
    this.name = name;
    this.holder = new ProjectionHolder(name, opts.projection);
    this.symmetric = symmetric;
    this.numFeatures = symmetric ? 2 * this.holder.rows : this.holder.rows;
    this.eps = opts.eps ?? 1e-6;
    if (!(typeof this.eps === 'number' && Number.isFinite(this.eps) && this.eps >= 0)) {
      throw new RangeError(`${name}: eps must be a finite number >= 0, got ${describe(opts.eps)}`);
    }
    if (opts.stabilize !== undefined && typeof opts.stabilize !== 'boolean') {
      throw new TypeError(`${name}: stabilize must be a boolean, got ${describe(opts.stabilize)}`);
    }
    if (opts.compatibility !== undefined && opts.compatibility !== 'performer-pytorch') {
      throw new RangeError(
        `${name}: compatibility must be 'performer-pytorch' or undefined, got ${describe(opts.compatibility)}`,
      );
    }
    this.stabilize = opts.stabilize ?? true;
    this.mode = !this.stabilize ? 'none' : (opts.compatibility ?? 'exact');
    this.keyStabilizer = this.mode === 'performer-pytorch' ? 'global' : 'visible';
  }

  /** Input dimension d. */
  get dim(): number {
    return this.holder.cols;
  }

  /**
   * The options that rebuild this map (`positiveSoftmax(spec)` or `hyperbolicSoftmax(spec)`, by
   * `name`) with the projection as a Float64 Matrix: plain data that can be posted to a worker.
   */
  spec(): ExpFeatureSpec {
    return {
      name: this.name as ExpFeatureSpec['name'],
      projection: this.holder.toMatrix(),
      eps: this.eps,
      stabilize: this.stabilize,
      ...(this.mode === 'performer-pytorch' ? { compatibility: 'performer-pytorch' as const } : {}),
    };
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
   * per row: exp(u − ℓ) = Z·softmax(u) for the row max ℓ of u and Z = 1 / max softmax(u).
   * tfjs-wasm's softmax kernel is vectorized, its exp is not: this form costs a third of
   * max + subtract + exp, and attention can apply `scale` to its small products.
   */
  factoredFeatures(x: tf.Tensor, role: FeatureRole): FactoredFeatures {
    assertRole(this.name, role);
    this.holder.assertInput(`${this.name}.factoredFeatures`, x);
    return tf.tidy(() => {
      const { rows, logScale } = this.factored(x, role);
      const lead = x.shape.slice(0, -1);
      return {
        rows: tf.reshape(rows, [...lead, this.numFeatures]),
        scale: tf.reshape(tf.exp(logScale), [...lead, 1]),
        floor: this.floor,
      };
    });
  }

  /**
   * rows = softmax(u) [N, m'] and the log of the per-row factor [N, 1] of the features
   * (φ − floor = rows·exp(logScale)); `ell`, the row's stabilizer exponent ℓ = max_f a_f (exact
   * mode; performer-pytorch mode: max_f u_f), is returned when asked for.
   */
  private factored(
    x: tf.Tensor,
    role: FeatureRole | 'base',
    withEll = false,
  ): { rows: tf.Tensor2D; logScale: tf.Tensor2D; ell: tf.Tensor2D | null } {
    const u0 = this.holder.project(`${this.name}.features`, x);
    const u = this.symmetric ? (tf.concat([u0, tf.neg(u0)], 1) as tf.Tensor2D) : u0;
    const logRatio = -0.5 * Math.log(this.numFeatures);
    const rows = tf.softmax(u) as tf.Tensor2D;
    // softmax's max entry is e^0 / Z, so exp(u − max u) = Z·rows
    const logZ = tf.neg(tf.log(tf.max(rows, -1, true)));
    const x2 = tf.reshape(x, [-1, this.holder.cols]) as tf.Tensor2D;
    // the mode decides whether the half norm n = ½|x̂|² sits inside the stabilizer or in the features
    const needsNorm = this.mode !== 'exact' || withEll || role === 'key';
    const n = needsNorm ? halfSquaredNorm(x2, this.holder.normalizer) : null;
    const needsMax = this.mode === 'none' || withEll || role === 'key';
    const rowMax = needsMax ? (tf.max(u, -1, true) as tf.Tensor2D) : null;
    const ell =
      rowMax === null ? null : this.mode === 'exact' ? (tf.sub(rowMax, n!) as tf.Tensor2D) : rowMax;
    // exact: base = r·exp(u − max u) (the norm is inside ℓ); performer-pytorch: r·exp(u − max u − n)
    let logScale: tf.Tensor = tf.add(logZ, logRatio);
    if (this.mode !== 'exact') logScale = tf.sub(logScale, n!);
    if (this.mode === 'none') {
      logScale = tf.add(logScale, rowMax!); // s = 0: φ = r·exp(u − n)
    } else if (role === 'key') {
      // features(k, 'key'): s = max of ℓ over the group (per (batch, head))
      const { groups, length } = groupsOf(x);
      const e = tf.reshape(ell!, [groups, length, 1]);
      logScale = tf.add(logScale, tf.reshape(tf.sub(e, tf.max(e, [1, 2], true)), [-1, 1]));
    }
    return { rows, logScale: logScale as tf.Tensor2D, ell };
  }

  private compute(x: tf.Tensor, role: FeatureRole, withFloor: boolean): tf.Tensor {
    assertRole(this.name, role);
    this.holder.assertInput(`${this.name}.features`, x);
    if (
      hasFusedKernel(PositiveFeatures) &&
      x.size > 0 &&
      (role === 'query' || this.mode !== 'exact')
    ) {
      return this.fused(x, role, withFloor);
    }
    return tf.tidy(() => {
      const { rows, logScale } = this.factored(x, role);
      let phi = tf.mul(rows, tf.exp(logScale));
      if (withFloor && this.eps > 0) phi = tf.add(phi, this.floor);
      return tf.reshape(phi, [...x.shape.slice(0, -1), this.numFeatures]);
    });
  }

  /**
   * The same features from the fused kernel a backend registered (see kernel-names.ts): queries in
   * every mode (exact mode drops the half norm, which its stabilizer cancels), keys in the
   * unstabilized and performer-pytorch modes (whose stabilizers the kernel computes).
   */
  private fused(x: tf.Tensor, role: FeatureRole, withFloor: boolean): tf.Tensor {
    return tf.tidy(() => {
      const { groups, length } = groupsOf(x);
      const c = this.holder.normalizer;
      const phi = fusedPositiveFeatures(
        tf.reshape(x, [groups, length, this.holder.cols]),
        this.holder.scaledTransposed(), // a cached operand is kept, so this tidy leaves it alone
        {
          stabilizer: this.mode === 'none' ? 'none' : role === 'query' ? 'row' : 'group',
          symmetric: this.symmetric,
          halfNormScale: this.mode === 'exact' ? 0 : 0.5 * c * c,
          logRatio: -0.5 * Math.log(this.numFeatures),
          floor: withFloor ? this.floor : 0,
        },
      );
      return tf.reshape(phi, [...x.shape.slice(0, -1), this.numFeatures]);
    });
  }

  /**
   * Key features split for attention's own stabilizer: φ(k_j; s) = e^{ℓ_j − s}·base_j + floor with
   * ℓ_j = max_f a_jf and base_j = r·exp(a_j − ℓ_j) (largest entry r). Unstabilized maps: ℓ = 0,
   * base = the textbook features without floor; performer-pytorch mode: ℓ_j = max_f u_jf.
   */
  keyParts(x: tf.Tensor): KeyParts {
    this.holder.assertInput(`${this.name}.keyParts`, x);
    return tf.tidy(() => {
      const { rows, logScale, ell } = this.factored(x, 'base', true);
      const lead = x.shape.slice(0, -1);
      const base = tf.mul(rows, tf.exp(logScale)); // logScale here is the query form (no group term)
      return {
        base: tf.reshape(base, [...lead, this.numFeatures]),
        logScale: tf.reshape(this.mode === 'none' ? tf.zerosLike(ell!) : ell!, [...lead, 1]),
        floor: this.floor,
      };
    });
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
