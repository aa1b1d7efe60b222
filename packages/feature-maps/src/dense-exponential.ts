import type { Matrix } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { backendCapabilities } from './backend-capabilities.js';
import type { FeatureMap, FeatureRole, KeyParts } from './feature-map.js';
import { matmul, spectralFunction, symmetricEigen, transpose } from './linalg.js';
import { expBelow, matMul } from './packed-lanes.js';
import { ProjectionHolder } from './projection.js';
import { assertOptions, assertTensor, shapeString } from './validate.js';
import { describe } from './validate-number.js';

/**
 * Lower-variance positive random features for the softmax kernel K(x, y) = exp(x·y), x = q·d^-1/4,
 * y = k·d^-1/4, ω ~ N(0, I_d) (block-orthogonal rows of the projection):
 *
 * - OPRF / FAVOR++ (Likhosherstov et al. 2022, "Chefs' Random Tables"):
 *     f(ω, z) = D·exp(A|ω|² + B ω·z − |z|²/2),  B = √(1 − 4A),  D = (1 − 4A)^{d/4},  A < 1/8;
 *   A = 0 is FAVOR+. Relative variance (1 + 16A²/(1 − 8A))^{d/2}·exp(|x + y|²/(1 − 8A)) − 1.
 * - Dense-exponential (Likhosherstov et al. 2023, FAVOR#): SADERF (a diagonal rescaling
 *   x → ψ⊙x, y → y/ψ, then OPRF), ADERF (x → Ψ1x, y → Ψ2y with Ψ1ᵀΨ2 = I, then OPRF) and SDERF
 *   (f(ω, z) = D·exp(ωᵀAω + ωᵀBz − |z|²/2) with a symmetric matrix A, B = (I − 4A)^{1/2},
 *   D = det(I − 4A)^{1/4}).
 *
 * Each fit minimises the mean, over all query–key pairs of one attention matrix, of the log of
 * the estimator's second moment relative to K² — a function of φ = mean|x|² + mean|y|² + 2x̄·ȳ
 * for OPRF (closed form below), of M1 = XᵀX/L, M2 = YᵀY/L, x̄, ȳ for the others.
 */
export type DenseExponentialVariant = 'oprf' | 'saderf' | 'aderf' | 'sderf';
export const DENSE_EXPONENTIAL_VARIANTS: readonly DenseExponentialVariant[] = [
  'oprf',
  'saderf',
  'aderf',
  'sderf',
];

/**
 * ρ of the OPRF fit, in the cancellation-free form 2d / ((d + 2φ) + √((d + 2φ)² + 8dφ)).
 *
 * @param phi - the mean of |x + y|² over query–key pairs
 * @param d - the dimension
 */
export function oprfRho(phi: number, d: number): number {
  const p = Math.max(0, phi);
  return (2 * d) / (d + 2 * p + Math.sqrt((d + 2 * p) ** 2 + 8 * d * p));
}

/**
 * The A minimising the OPRF objective for the statistic φ: A = (1 − 1/ρ)/8 (≤ 0).
 *
 * @param phi - the mean of |x + y|² over query–key pairs
 * @param d - the dimension
 */
export function oprfOptimalA(phi: number, d: number): number {
  return (1 - 1 / oprfRho(phi, d)) / 8;
}

/**
 * The OPRF objective: mean log second moment relative to K² over pairs with mean |x + y|² = φ,
 *   (d/2)·ln(1 + 16A²/(1 − 8A)) + φ/(1 − 8A);  A = 0 gives FAVOR+'s φ.
 *
 * @param A - the OPRF parameter A (< 1/8)
 * @param d - the dimension
 * @param phi - the mean of |x + y|² over query–key pairs
 */
export function oprfLogSecondMoment(A: number, d: number, phi: number): number {
  return (d / 2) * Math.log1p((16 * A * A) / (1 - 8 * A)) + phi / (1 - 8 * A);
}

/**
 * The per-pair relative variance of the OPRF estimator at |x + y|² = s (Var / K²).
 *
 * @param A - the OPRF parameter A (< 1/8)
 * @param d - the dimension
 * @param s - |x + y|² of the query–key pair
 */
export function oprfRelativeVariance(A: number, d: number, s: number): number {
  return Math.exp(oprfLogSecondMoment(A, d, s)) - 1;
}

/** Statistics of one attention matrix's queries and keys (x̂, ŷ scaled by d^-1/4), Float64. */
export interface AttentionStatistics {
  d: number;
  /** mean x xᵀ, d×d row-major */
  m1: Float64Array;
  /** mean y yᵀ over the unpadded keys */
  m2: Float64Array;
  xbar: Float64Array;
  ybar: Float64Array;
}

/** The parameters of one fit and its objective (the mean log second moment relative to K²). */
export interface DenseExponentialFit {
  variant: DenseExponentialVariant | 'favor+';
  objective: number;
  /** OPRF-type fits: the scalar A after the transform (SDERF: undefined). */
  A?: number;
  /** SADERF: ψ per dimension (x → ψ⊙x, y → y/ψ). */
  psi?: Float64Array;
  /** ADERF: Ψ1, Ψ2 (d×d, x → Ψ1x, y → Ψ2y). */
  psi1?: Float64Array;
  psi2?: Float64Array;
  /** SDERF: A = Q diag(a) Qᵀ (Q's columns are the eigenvectors of M1 + M2 + x̄ȳᵀ + ȳx̄ᵀ). */
  a?: Float64Array;
  q?: Float64Array;
}

const trace = (m: Float64Array, d: number) => {
  let t = 0;
  for (let i = 0; i < d; i++) t += m[i * d + i]!;
  return t;
};
const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

/**
 * Fits a variant to the statistics in Float64 (the oracle of the tensor fits, and the ADERF/SDERF fits themselves).
 *
 * @param variant - 'saderf', 'aderf', 'sderf', or 'favor+' (the plain positive features, for comparison)
 * @param s - the statistics of the queries and keys (see AttentionStatistics)
 */
export function fitDenseExponential(
  variant: DenseExponentialVariant | 'favor+',
  s: AttentionStatistics,
): DenseExponentialFit {
  const { d, m1, m2, xbar, ybar } = s;
  const cross = 2 * dot(xbar, ybar);
  if (variant === 'favor+' || variant === 'oprf') {
    const phi = trace(m1, d) + trace(m2, d) + cross;
    const A = variant === 'favor+' ? 0 : oprfOptimalA(phi, d);
    return { variant, A, objective: oprfLogSecondMoment(A, d, phi) };
  }
  if (variant === 'saderf') return fitSaderf(s, cross);
  if (variant === 'aderf') return fitAderf(s, cross);
  return fitSderf(s);
}

/** SADERF: a diagonal rescaling ψ per dimension, then the OPRF fit. */
function fitSaderf(s: AttentionStatistics, cross: number): DenseExponentialFit {
  const { d, m1, m2 } = s;
  const variant = 'saderf';
  const psi = Float64Array.from({ length: d }, (_, l) => {
    const a = m1[l * d + l]!;
    const b = m2[l * d + l]!;
    return ((b + 1e-12) / (a + 1e-12)) ** 0.25;
  });
  let phi = cross;
  for (let l = 0; l < d; l++) phi += psi[l]! ** 2 * m1[l * d + l]! + m2[l * d + l]! / psi[l]! ** 2;
  const A = oprfOptimalA(phi, d);
  return { variant, A, psi, objective: oprfLogSecondMoment(A, d, phi) };
}

/**
 * ADERF: x → Ψ1x, y → Ψ2y with Ψ1ᵀΨ2 = I chosen to minimise the traces, then the OPRF fit.
 */
function fitAderf(s: AttentionStatistics, cross: number): DenseExponentialFit {
  const { d, m1, m2 } = s;
  const variant = 'aderf';
  // Ψ1 = Σ^{1/2} Vᵀ M1^{-1/2}, Ψ2 = Σ^{-1/2} Vᵀ M1^{1/2} with S = M2^{1/2} M1^{1/2} = U Σ Vᵀ:
  // Ψ1ᵀΨ2 = I and tr(Ψ1 M1 Ψ1ᵀ) = tr(Ψ2 M2 Ψ2ᵀ) = tr Σ, the minimum of their sum
  // Ridge λ = 1e-3·tr(M)/d (+ an absolute floor): a rank-deficient M1 or M2 (fewer positions
  // than dimensions, e.g. one token) would otherwise send σ → 0 and Ψ2 → ∞ (NaN features in
  // float32). Any regularized pair still has Ψ1ᵀΨ2 = I exactly, so the estimator stays
  // unbiased; the condition number of each Ψ stays below (1e3·d)^{1/2}.
  const reg = (m: Float64Array) => {
    const out = Float64Array.from(m);
    const eps = 1e-3 * (Math.max(trace(m, d), 0) / d) + 1e-12;
    for (let i = 0; i < d; i++) out[i * d + i]! += eps;
    return out;
  };
  const e1 = symmetricEigen(reg(m1), d);
  const e2 = symmetricEigen(reg(m2), d);
  const pos = (x: number) => Math.max(x, 1e-300);
  const m1Half = spectralFunction(e1, d, (x) => Math.sqrt(pos(x)));
  const m1InvHalf = spectralFunction(e1, d, (x) => 1 / Math.sqrt(pos(x)));
  const m2Half = spectralFunction(e2, d, (x) => Math.sqrt(pos(x)));
  const S = matmul(m2Half, m1Half, d, d, d);
  const eS = symmetricEigen(matmul(transpose(S, d, d), S, d, d, d), d); // SᵀS = V Σ² Vᵀ
  const sigma = eS.values.map((x) => Math.sqrt(pos(x)));
  const vT = transpose(eS.vectors, d, d);
  const scaleRows = (m: Float64Array, f: (i: number) => number) =>
    m.map((x, idx) => x * f(Math.floor(idx / d)));
  const psi1 = matmul(
    scaleRows(vT, (i) => Math.sqrt(sigma[i]!)),
    m1InvHalf,
    d,
    d,
    d,
  );
  const psi2 = matmul(
    scaleRows(vT, (i) => 1 / Math.sqrt(sigma[i]!)),
    m1Half,
    d,
    d,
    d,
  );
  const quad = (psi: Float64Array, m: Float64Array) =>
    trace(matmul(matmul(psi, m, d, d, d), transpose(psi, d, d), d, d, d), d);
  if (![...psi1, ...psi2].every(Number.isFinite)) {
    // a numerically failed eigen-fit: Ψ1 = Ψ2 = I (OPRF), finite and unbiased
    const identity = Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0));
    const phi0 = trace(m1, d) + trace(m2, d) + cross;
    const A0 = oprfOptimalA(phi0, d);
    return {
      variant,
      A: A0,
      psi1: identity,
      psi2: Float64Array.from(identity),
      objective: oprfLogSecondMoment(A0, d, phi0),
    };
  }
  const phi = quad(psi1, m1) + quad(psi2, m2) + cross;
  const A = oprfOptimalA(phi, d);
  return { variant, A, psi1, psi2, objective: oprfLogSecondMoment(A, d, phi) };
}

/** SDERF: per eigen-direction of M = M1 + M2 + x̄ȳᵀ + ȳx̄ᵀ the 1-D OPRF fit. */
function fitSderf(s: AttentionStatistics): DenseExponentialFit {
  const { d, m1, m2, xbar, ybar } = s;
  const variant = 'sderf';
  const m = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      m[i * d + j] = m1[i * d + j]! + m2[i * d + j]! + xbar[i]! * ybar[j]! + ybar[i]! * xbar[j]!;
    }
  }
  const e = symmetricEigen(m, d);
  const mu = e.values.map((x) => Math.max(0, x));
  const a = mu.map((x) => oprfOptimalA(x, 1));
  let objective = 0;
  for (let l = 0; l < d; l++) objective += oprfLogSecondMoment(a[l]!, 1, mu[l]!);
  return { variant, a, q: e.vectors, objective };
}

export interface DenseExponentialOptions {
  /** ω: the projection W [m, d] as a Float64 Matrix (block-orthogonal for the paper's setting). */
  projection: Matrix;
  /** Added to every feature before the m^-1/2 ratio (default 0). */
  eps?: number;
  /**
   * Antithetic pairs (default false): features for ω and −ω alike (2m features from m rows, as
   * the hyperbolic variant of FAVOR+); each pair's errors partly cancel. The rows are ordered
   * [W₁; −W₁; W₂; −W₂] for the halves W₁, W₂ of W, so the two halves of the features stay
   * independent (favorAttention's `shrinkage` reads its noise off them).
   */
  antithetic?: boolean;
}

/** [W₁; −W₁; W₂; −W₂] for the row halves W₁, W₂ of W. */
function antitheticRows(w: Matrix): Matrix {
  const { rows: m, cols: d, data } = w;
  const h = Math.floor(m / 2);
  const out = new Float64Array(2 * m * d);
  const put = (from: number, to: number, at: number, sign: number) => {
    for (let i = 0; i < (to - from) * d; i++) out[at * d + i] = sign * data[from * d + i]!;
  };
  put(0, h, 0, 1);
  put(0, h, h, -1);
  put(h, m, 2 * h, 1);
  put(h, m, 2 * h + (m - h), -1);
  return { rows: 2 * m, cols: d, data: out };
}

/** Per-group parameters of a prepared map, as tensors (G groups). */
interface Prepared {
  /** raw z → z ⊙ scale before the map ([G, 1, d]), or a [G, d, d] matrix T (z → z·Tᵀ); per role */
  query: tf.Tensor | null;
  key: tf.Tensor | null;
  /** per-group projection [G, m, d], or null to use W scaled by `b` */
  projection: tf.Tensor | null;
  /** [G, 1, 1] scale of u = x̂·Wᵀ (OPRF's B) when projection is null */
  b: tf.Tensor | null;
  /**
   * [G, 1, m] (or [G, 1, 1]) added to every exponent of one role: the per-feature offset
   * o_r = A|ω_r|² + ln D (SDERF: ω_rᵀAω_r + ln D) belongs to both the query's and the key's
   * feature, so each product carries 2o_r; it goes whole to the role with the larger mean |x̂|²
   * (per group). Products — the estimator — are unchanged, but the side whose exponents vary
   * most over the features absorbs the offset's spread, so the two sides' stabilized features
   * still overlap: an even split leaves all products to underflow at logits of 10–20 when one
   * side is large and the other small.
   */
  queryOffset: tf.Tensor;
  keyOffset: tf.Tensor;
}

/** Both roles' exponent offsets from o [G, 1, m] and the mean squared norms nq, nk [G, 1, 1]. */
function splitOffset(
  offset: tf.Tensor,
  nq: tf.Tensor,
  nk: tf.Tensor,
): Pick<Prepared, 'queryOffset' | 'keyOffset'> {
  const toQuery = tf.cast(tf.greaterEqual(nq, nk), 'float32'); // [G, 1, 1]
  const twice = tf.mul(offset, 2);
  return {
    queryOffset: tf.mul(twice, toQuery),
    keyOffset: tf.mul(twice, tf.sub(1, toQuery)),
  };
}

/** One call's statistics per group (x̂, ŷ scaled by d^-1/4; w the keys' keep weights). */
interface CallStatistics {
  G: number;
  x: tf.Tensor;
  y: tf.Tensor;
  /** [G, Lk, 1] */
  w: tf.Tensor;
  /** unpadded keys per group [G, 1, 1] (at least 1) */
  nk: tf.Tensor;
  xbar: tf.Tensor;
  ybar: tf.Tensor;
  /** mean |x̂|², |ŷ|² [G, 1, 1] */
  normQ: tf.Tensor;
  normK: tf.Tensor;
}

/** The tensors a Prepared holds. */
const tensorsOf = (p: Prepared): tf.Tensor[] =>
  [p.query, p.key, p.projection, p.b, p.queryOffset, p.keyOffset].filter(
    (t): t is tf.Tensor => t !== null,
  );

/** `make()` in a tidy that keeps the returned Prepared's tensors (and frees everything else). */
function tidyPrepared(make: () => Prepared): Prepared {
  let prepared: Prepared | null = null;
  tf.tidy(() => {
    prepared = make();
    for (const t of tensorsOf(prepared)) tf.keep(t);
  });
  return prepared!;
}

/** x with a zero gradient: statistics never carry one (DESIGN of the fits). */
const constant = (x: tf.Tensor): tf.Tensor =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }))(x);

/**
 * A dense-exponential feature map. Used directly it is FAVOR+ (A = 0); `prepare(q, k, keep)` fits
 * the variant to one attention call and returns the map to use for it (favorAttention and the
 * mechanisms that take a feature map call it).
 */
class DenseExponentialMap implements FeatureMap {
  readonly name: string;
  readonly numFeatures: number;
  readonly eps: number;
  readonly variant: DenseExponentialVariant;
  readonly antithetic: boolean;
  private readonly holder: ProjectionHolder;
  private readonly w: Matrix;
  private readonly prepared: Prepared | null;
  private readonly groups: number | null;
  /** |ω_r|² per projection row, computed on the first fit */
  private omegaNorms: Float32Array | null = null;

  constructor(
    name: string,
    variant: DenseExponentialVariant,
    opts: DenseExponentialOptions,
    prepared: Prepared | null = null,
    groups: number | null = null,
    holder?: ProjectionHolder,
  ) {
    assertOptions(name, opts, '{ projection }');
    const p = opts.projection as Partial<Matrix> | undefined;
    if (!p || !(p.data instanceof Float64Array) || typeof p.rows !== 'number') {
      throw new TypeError(
        `${name}: projection must be a Float64 Matrix (e.g. gaussianOrthogonal(m, d, { seed })), got ${describe(opts.projection)}`,
      );
    }
    this.name = name;
    this.variant = variant;
    this.antithetic = opts.antithetic === true;
    this.w =
      this.antithetic && prepared === null && !holder
        ? antitheticRows(opts.projection)
        : opts.projection;
    this.holder = holder ?? new ProjectionHolder(name, this.w);
    this.numFeatures = this.holder.rows;
    this.eps = opts.eps ?? 0;
    if (!(Number.isFinite(this.eps) && this.eps >= 0)) {
      throw new RangeError(`${name}: eps must be a finite number >= 0, got ${describe(opts.eps)}`);
    }
    this.prepared = prepared;
    this.groups = groups;
  }

  get floor(): number {
    return this.eps / Math.sqrt(this.numFeatures);
  }

  /** The exponents a = u + offset − ½|ẑ|² as [G, L, m] (before any stabilizer), and x's leading shape. */
  private exponents(fn: string, x: tf.Tensor, role: FeatureRole): { a: tf.Tensor; lead: number[] } {
    this.holder.assertInput(fn, x);
    const d = this.holder.cols;
    const m = this.numFeatures;
    const lead = x.shape.slice(0, -2);
    const L = x.shape[x.rank - 2]!;
    const G = lead.reduce((a, b) => a * b, 1);
    const p = this.prepared;
    if (p !== null && this.groups !== G) {
      throw new RangeError(
        `${fn}: this map was prepared for ${this.groups} (batch, head) groups, got x of shape [${x.shape.join(',')}]`,
      );
    }
    let z: tf.Tensor = tf.reshape(x, [G, L, d]);
    const t = p === null ? null : role === 'query' ? p.query : p.key;
    if (t !== null) {
      z = t.shape[1] === 1 ? tf.mul(z, t) : matMul(z, t, false, true);
    }
    const c = this.holder.normalizer;
    let u: tf.Tensor;
    if (p?.projection) {
      u = matMul(tf.mul(z, c), p.projection, false, true); // [G, L, m]
    } else {
      u = tf.reshape(this.holder.project(fn, z), [G, L, m]);
      if (p?.b) u = tf.mul(u, p.b);
    }
    let a = tf.sub(u, tf.mul(tf.sum(tf.square(z), -1, true), 0.5 * c * c));
    if (p !== null) a = tf.add(a, role === 'query' ? p.queryOffset : p.keyOffset);
    return { a, lead };
  }

  /**
   * φ(z) = m^-1/2·(exp(a − s) + eps), s the query's row max or the keys' max per group (both
   * cancel in attention).
   */
  features(x: tf.Tensor, role: FeatureRole): tf.Tensor {
    return tf.tidy(() => {
      const { a, lead } = this.exponents(`${this.name}.features`, x, role);
      const s = role === 'query' ? tf.max(a, -1, true) : tf.max(a, [1, 2], true);
      let f = expBelow(a, s);
      if (this.eps !== 0) f = tf.add(f, this.eps);
      return tf.reshape(tf.mul(f, 1 / Math.sqrt(this.numFeatures)), [...lead, ...a.shape.slice(1)]);
    });
  }

  /** Key features as e^{ℓ_j − s}·base_j + floor (blocked bidirectional attention, streaming). */
  keyParts(x: tf.Tensor): KeyParts {
    return tf.tidy(() => {
      const { a, lead } = this.exponents(`${this.name}.keyParts`, x, 'key');
      const ell = tf.max(a, -1, true);
      const L = a.shape[1]!;
      return {
        base: tf.reshape(tf.mul(expBelow(a, ell), 1 / Math.sqrt(this.numFeatures)), [
          ...lead,
          L,
          this.numFeatures,
        ]),
        logScale: tf.reshape(ell, [...lead, L, 1]),
        floor: this.floor,
      };
    });
  }

  /**
   * Fits the variant to one attention call: q [G, Lq, d], k [G, Lk, d] (padded keys zeroed),
   * keep [G, Lk, 1] or null. One parameter set per group, shared by all its queries and keys; no
   * gradient flows through the statistics. ADERF and SDERF solve d×d eigenproblems on the CPU
   * (Float64), so they read the statistics synchronously (not possible on WebGPU).
   */
  prepare(q: tf.Tensor, k: tf.Tensor, keep: tf.Tensor | null): FeatureMap & { dispose(): void } {
    const fn = `${this.name}.prepare`;
    const G = this.checkPrepare(fn, q, k, keep);
    const prepared = tidyPrepared((): Prepared => {
      const s = this.statistics(G, q, k, keep);
      if (this.variant === 'oprf' || this.variant === 'saderf') return this.fitOnDevice(s);
      if (!backendCapabilities().syncReads) {
        throw new Error(
          `${fn}: the ${this.variant} fit solves d×d eigenproblems on the CPU and needs synchronous reads, which tfjs-${tf.getBackend()} does not offer; use 'oprf' or 'saderf' there`,
        );
      }
      return this.fitOnHost(s);
    });
    return new DenseExponentialMap(
      this.name,
      this.variant,
      { projection: this.w, eps: this.eps, antithetic: this.antithetic },
      prepared,
      G,
      this.holder,
    );
  }

  /** Checks prepare's inputs; returns the number of (batch, head) groups G. */
  private checkPrepare(fn: string, q: tf.Tensor, k: tf.Tensor, keep: tf.Tensor | null): number {
    this.holder.assertInput(fn, q);
    this.holder.assertInput(fn, k);
    const d = this.holder.cols;
    const G = q.size / (q.shape[q.rank - 2]! * d);
    const Lk = k.shape[k.rank - 2]!;
    if (k.size / (Lk * d) !== G) {
      throw new RangeError(
        `${fn}: q and k must have the same (batch, head) groups, got q ${shapeString(q.shape)} and k ${shapeString(k.shape)}`,
      );
    }
    if (keep !== null) {
      assertTensor(fn, 'keep', keep, { dtype: 'float32' }, '[groups, keyLength, 1]');
      if (keep.size !== G * Lk || keep.shape[keep.rank - 1] !== 1) {
        throw new RangeError(
          `${fn}: keep must have shape [groups, keyLength, 1] = [${G},${Lk},1], got ${shapeString(keep.shape)}`,
        );
      }
    }
    return G;
  }

  /** The call's statistics per group (no gradient through them); inside prepare's tidy. */
  private statistics(
    G: number,
    q: tf.Tensor,
    k: tf.Tensor,
    keep: tf.Tensor | null,
  ): CallStatistics {
    const d = this.holder.cols;
    const c = this.holder.normalizer;
    const x = tf.mul(constant(tf.reshape(q, [G, -1, d])), c);
    const y = tf.mul(constant(tf.reshape(k, [G, -1, d])), c);
    const w =
      keep === null
        ? tf.onesLike(tf.slice(y, [0, 0, 0], [G, -1, 1]))
        : tf.reshape(keep, [G, -1, 1]);
    const nk = tf.maximum(tf.sum(w, 1, true), 1); // [G, 1, 1]
    return {
      G,
      x,
      y,
      w,
      nk,
      xbar: tf.mean(x, 1, true), // [G, 1, d]
      ybar: tf.div(tf.sum(tf.mul(y, w), 1, true), nk),
      // mean |x̂|² and |ŷ|² (unpadded keys): which role takes the exponent offsets
      normQ: tf.mean(tf.sum(tf.square(x), -1, true), 1, true),
      normK: tf.div(tf.sum(tf.mul(tf.sum(tf.square(y), -1, true), w), 1, true), nk),
    };
  }

  /** OPRF and SADERF: tensor ops on every backend (diagonal statistics only). */
  private fitOnDevice(s: CallStatistics): Prepared {
    const d = this.holder.cols;
    const m1 = tf.mean(tf.square(s.x), 1, true); // [G, 1, d] diagonal of M1
    const m2 = tf.div(tf.sum(tf.mul(tf.square(s.y), s.w), 1, true), s.nk);
    const cross = tf.mul(tf.sum(tf.mul(s.xbar, s.ybar), -1, true), 2);
    let phi: tf.Tensor;
    let scale: tf.Tensor | null = null;
    if (this.variant === 'saderf') {
      const psi2 = tf.sqrt(tf.div(tf.add(m2, 1e-12), tf.add(m1, 1e-12))); // ψ²
      phi = tf.add(tf.sum(tf.add(tf.mul(psi2, m1), tf.div(m2, psi2)), -1, true), cross);
      scale = tf.sqrt(psi2); // ψ
    } else {
      phi = tf.add(tf.sum(tf.add(m1, m2), -1, true), cross);
    }
    phi = tf.maximum(phi, 0); // [G, 1, 1]
    const dp = tf.add(tf.mul(phi, 2), d);
    const rho = tf.div(2 * d, tf.add(dp, tf.sqrt(tf.add(tf.square(dp), tf.mul(phi, 8 * d)))));
    const A = tf.div(tf.sub(1, tf.reciprocal(rho)), 8);
    const { b, offset } = this.oprfScaleAndOffset(A);
    return {
      query: scale,
      key: scale === null ? null : tf.reciprocal(scale),
      projection: null,
      b,
      ...splitOffset(offset, s.normQ, s.normK),
    };
  }

  /** ADERF and SDERF: the d×d statistics read to the CPU and fitted in Float64. */
  private fitOnHost(s: CallStatistics): Prepared {
    const d = this.holder.cols;
    const G = s.G;
    const m1 = tf.div(matMul(s.x, s.x, true, false), s.x.shape[1]!); // [G, d, d]
    const m2 = tf.div(matMul(tf.mul(s.y, s.w), s.y, true, false), s.nk);
    const [m1d, m2d, xd, yd] = [m1, m2, s.xbar, s.ybar].map((t) => t.dataSync());
    const fits = Array.from({ length: G }, (_, g) =>
      fitDenseExponential(this.variant, {
        d,
        m1: Float64Array.from(m1d!.subarray(g * d * d, (g + 1) * d * d)),
        m2: Float64Array.from(m2d!.subarray(g * d * d, (g + 1) * d * d)),
        xbar: Float64Array.from(xd!.subarray(g * d, (g + 1) * d)),
        ybar: Float64Array.from(yd!.subarray(g * d, (g + 1) * d)),
      }),
    );
    if (this.variant === 'aderf') {
      const stack = (pick: (f: DenseExponentialFit) => Float64Array) =>
        tf.tensor3d(Float32Array.from(fits.flatMap((f) => Array.from(pick(f)))), [G, d, d]);
      const { b, offset } = this.oprfScaleAndOffset(
        tf.tensor3d(
          fits.map((f) => f.A!),
          [G, 1, 1],
        ),
      );
      return {
        query: stack((f) => f.psi1!),
        key: stack((f) => f.psi2!),
        projection: null,
        b,
        ...splitOffset(offset, s.normQ, s.normK),
      };
    }
    const { projection, offset } = this.sderfParameters(fits);
    return {
      query: null,
      key: null,
      projection,
      b: null,
      ...splitOffset(offset, s.normQ, s.normK),
    };
  }

  /** SDERF per group: projection rows ω_rᵀB [G, m, d] and offsets ω_rᵀAω_r + ln D [G, 1, m]. */
  private sderfParameters(fits: DenseExponentialFit[]): {
    projection: tf.Tensor;
    offset: tf.Tensor;
  } {
    const d = this.holder.cols;
    const m = this.numFeatures;
    const G = fits.length;
    const projections = new Float32Array(G * m * d);
    const offsets = new Float32Array(G * m);
    fits.forEach((f, g) => {
      const Q = f.q!;
      const a = f.a!;
      const bMat = spectralFunction(
        { values: Float64Array.from(a, (x) => Math.sqrt(1 - 4 * x)), vectors: Q },
        d,
        (x) => x,
      );
      projections.set(matmul(this.w.data, bMat, m, d, d), g * m * d);
      const wQ = matmul(this.w.data, Q, m, d, d); // coordinates of ω_r in the eigenbasis
      let logD = 0;
      for (let l = 0; l < d; l++) logD += Math.log(1 - 4 * a[l]!) / 4;
      for (let r = 0; r < m; r++) {
        let s = 0;
        for (let l = 0; l < d; l++) s += a[l]! * wQ[r * d + l]! ** 2;
        offsets[g * m + r] = s + logD;
      }
    });
    return {
      projection: tf.tensor3d(projections, [G, m, d]),
      offset: tf.tensor3d(offsets, [G, 1, m]),
    };
  }

  /**
   * OPRF's per-group constants from A [G, 1, 1]: the scale B = √(1 − 4A) of u = x̂·Wᵀ and the
   * exponent offset A|ω_r|² + ln D, D = (1 − 4A)^{d/4}, as [G, 1, m].
   */
  private oprfScaleAndOffset(A: tf.Tensor): { b: tf.Tensor; offset: tf.Tensor } {
    const d = this.holder.cols;
    this.omegaNorms ??= Float32Array.from({ length: this.numFeatures }, (_, r) => {
      let s = 0;
      for (let l = 0; l < d; l++) s += this.w.data[r * d + l]! ** 2;
      return s;
    });
    const oneMinus4A = tf.sub(1, tf.mul(A, 4));
    return {
      b: tf.sqrt(oneMinus4A),
      offset: tf.add(
        tf.mul(A, tf.tensor3d(this.omegaNorms, [1, 1, this.numFeatures])),
        tf.mul(tf.log(oneMinus4A), d / 4),
      ),
    };
  }

  /** See {@link fittedParameters}. */
  generalForm(groups?: number): FittedParameters {
    const fn = 'fittedParameters';
    // an unfitted map is FAVOR+ (A = 0): identity transforms, the plain projection, no offsets
    const p = this.prepared;
    const G = (this.groups ?? groups) as number;
    if (p === null && !(Number.isInteger(G) && G >= 1)) {
      throw new RangeError(
        `${fn}: ${this.name} has not been fitted; pass the map that prepare(q, k, keep) returned, or the number of groups for the unfitted map, got ${describe(groups)}`,
      );
    }
    if (p !== null && groups !== undefined && groups !== G) {
      throw new RangeError(
        `${fn}: the map was fitted to ${G} (batch, head) groups, got groups = ${describe(groups)}`,
      );
    }
    const d = this.holder.cols;
    const m = this.numFeatures;
    return tf.tidy(() => {
      const identity = tf.tile(tf.reshape(tf.eye(d), [1, d, d]), [G, 1, 1]);
      /** [G, 1, d] scales or [G, d, d] matrices (z → z·Tᵀ), or null (identity), as [G, d, d] */
      const transform = (t: tf.Tensor | null) =>
        t === null
          ? tf.clone(identity)
          : t.shape[1] === 1
            ? tf.mul(identity, tf.reshape(t, [G, 1, d]))
            : tf.clone(t);
      const w = tf.tensor3d(Float32Array.from(this.w.data), [1, m, d]);
      const projection = p?.projection
        ? tf.clone(p.projection)
        : tf.mul(tf.tile(w, [G, 1, 1]), p?.b ? tf.reshape(p.b, [G, 1, 1]) : 1);
      const offset = (o: tf.Tensor | undefined) =>
        o === undefined ? tf.zeros([G, m]) : tf.reshape(tf.add(o, tf.zeros([G, 1, m])), [G, m]);
      return {
        groups: G,
        normalizer: this.holder.normalizer,
        eps: this.eps,
        projection: projection as tf.Tensor3D,
        queryTransform: transform(p?.query ?? null) as tf.Tensor3D,
        keyTransform: transform(p?.key ?? null) as tf.Tensor3D,
        queryOffset: offset(p?.queryOffset) as tf.Tensor2D,
        keyOffset: offset(p?.keyOffset) as tf.Tensor2D,
      };
    });
  }

  dispose(): void {
    if (this.prepared === null) {
      this.holder.dispose();
      return;
    }
    tf.dispose(tensorsOf(this.prepared));
  }
}

/**
 * A fitted OPRF or dense-exponential map in the form every variant shares, per (batch, head)
 * group g and role (query or key): z' = T_role·z, a = (c·z')·P_gᵀ − ½c²|z'|² + o_role, and
 * φ(z) = m^-1/2·(exp(a − s) + eps) with s a stabilizer that cancels in attention. Tensors the
 * caller disposes.
 */
export interface FittedParameters {
  /** G, the number of (batch, head) groups the map was fitted to. */
  groups: number;
  /** c = d^-1/4. */
  normalizer: number;
  /** The features' floor eps (before the m^-1/2 ratio). */
  eps: number;
  /** P [G, m, d]: the projection rows with the fit's scale (OPRF's B) or matrix (SDERF's B). */
  projection: tf.Tensor3D;
  /** T_query, T_key [G, d, d] (identity for OPRF and SDERF, diagonal for SADERF). */
  queryTransform: tf.Tensor3D;
  keyTransform: tf.Tensor3D;
  /** o_query, o_key [G, m]: the per-feature exponent offsets (A|ω|² + ln D, on one role). */
  queryOffset: tf.Tensor2D;
  keyOffset: tf.Tensor2D;
}

/**
 * The parameters of a fitted OPRF or dense-exponential map (the map that `prepare(q, k, keep)`
 * returned) in the general form of {@link FittedParameters} — what another engine needs to compute
 * the same features, e.g. the ONNX graphs of `@kernel-attention/onnx`. The unfitted map (FAVOR+,
 * A = 0) gives identity transforms, the plain projection and zero offsets for `groups` groups.
 *
 * @param map - a map returned by the `prepare` of optimizedPositiveSoftmax or denseExponentialSoftmax, or the unfitted map
 * @param groups - the number of (batch, head) groups, for the unfitted map (a fitted map knows its own)
 */
export function fittedParameters(map: FeatureMap, groups?: number): FittedParameters {
  if (!(map instanceof DenseExponentialMap)) {
    throw new TypeError(
      `fittedParameters: map must be a fitted optimizedPositiveSoftmax or denseExponentialSoftmax map (what its prepare returned), got ${map === null ? 'null' : typeof map === 'object' ? ((map as { name?: string }).name ?? 'an object') : typeof map}`,
    );
  }
  return map.generalForm(groups);
}

/**
 * OPRF / FAVOR++ features (Likhosherstov et al. 2022): positive random features with the
 * variance-optimal A ≤ 0 fitted per attention call (per (batch, head)) from one statistic,
 * φ = mean|x|² + mean|y|² + 2x̄·ȳ. Used without `prepare` it is FAVOR+.
 *
 * @param opts - `{ projection, eps, antithetic, shrink }` (see DenseExponentialOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { gaussianOrthogonal } from '@kernel-attention/random-features';
 * import { optimizedPositiveSoftmax } from '@kernel-attention/feature-maps';
 * import { favorAttention } from '@kernel-attention/core';
 * const featureMap = optimizedPositiveSoftmax({ projection: gaussianOrthogonal(128, 32, { seed: 0 }) });
 * const q = tf.randomNormal([1, 2, 256, 32]);
 * const out = favorAttention(q, q, q, { featureMap }); // favorAttention calls featureMap.prepare
 * ```
 */
export function optimizedPositiveSoftmax(
  opts: DenseExponentialOptions,
): FeatureMap & { dispose(): void } {
  return new DenseExponentialMap('optimizedPositiveSoftmax', 'oprf', opts);
}

/**
 * Dense-exponential random features (Likhosherstov et al. 2023): `variant` 'saderf' (diagonal
 * rescaling, then OPRF; every backend), 'aderf' (a full Ψ1ᵀΨ2 = I transform, then OPRF) or 'sderf'
 * (a symmetric matrix A) — the last two fitted on the CPU in Float64 (not on WebGPU). Also accepts
 * 'oprf'. Fitted per attention call by `prepare`; used without it, FAVOR+.
 *
 * @param opts - `{ projection, variant, eps, shrink, antithetic }` (see DenseExponentialOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { gaussianOrthogonal } from '@kernel-attention/random-features';
 * import { denseExponentialSoftmax } from '@kernel-attention/feature-maps';
 * import { favorAttention } from '@kernel-attention/core';
 * const featureMap = denseExponentialSoftmax({
 *   variant: 'sderf',
 *   projection: gaussianOrthogonal(128, 16, { seed: 0 }),
 * });
 * const q = tf.randomNormal([1, 2, 256, 16]);
 * const out = favorAttention(q, q, q, { featureMap });
 * ```
 */
export function denseExponentialSoftmax(
  opts: DenseExponentialOptions & { variant: DenseExponentialVariant },
): FeatureMap & { dispose(): void } {
  const variant = opts?.variant;
  if (!DENSE_EXPONENTIAL_VARIANTS.includes(variant)) {
    throw new RangeError(
      `denseExponentialSoftmax: variant must be one of ${DENSE_EXPONENTIAL_VARIANTS.join(', ')}, got ${describe(variant)}`,
    );
  }
  return new DenseExponentialMap(`denseExponentialSoftmax(${variant})`, variant, opts);
}
