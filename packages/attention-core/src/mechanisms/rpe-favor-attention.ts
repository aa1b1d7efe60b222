import {
  assertOptions,
  assertTensor,
  type FeatureMap,
  shapeString,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import type { KeySide } from '../ops/favor/key-side.js';
import { assertFeatureMap, featureWidth } from '../ops/favor/settings.js';
import { callFeatures } from '../ops/fitted-maps.js';
import { prefixScan } from '../ops/linear-attention.js';
import { groupsPerBlock, mapGroupBlocks } from '../tensor/group-blocks.js';
import { causalKeep, expBelow, NO_KEY_YET, safeDivide } from '../tensor/masking.js';
import { groupMatMul, transposeLast } from '../tensor/products.js';
import { rangeTaker } from '../tensor/range-taker.js';
import { validateMask, validateQkv } from '../tensor/validate.js';
import {
  assertHostFft,
  defaultToeplitzMethod,
  type ToeplitzMethod,
  toeplitzBlock,
  toeplitzMatmul,
} from './toeplitz.js';

export interface RpeFavorAttentionOptions {
  /** φ: any FeatureMap (positiveSoftmax for FAVOR+ with relative positions). */
  featureMap: FeatureMap;
  /**
   * b [H, 2L−1]: the bias of offset r = j − i at index r + L − 1 (one row per head); attention
   * weights are multiplied by c_r = exp(b_r). Trainable.
   */
  relativeBias: tf.Tensor;
  causal?: boolean;
  /** [B, L] 1 keep, 0 pad: padded keys are left out (their features are zeroed). */
  mask?: tf.Tensor;
  /** How the Toeplitz products run (default: per backend, see defaultToeplitzMethod). */
  method?: ToeplitzMethod;
  /**
   * The paper's stability recipe: queries and keys are ℓ2-normalized and the logits become
   * scale·q̃·k̃ (instead of q·k/√d), so no feature exponent can grow with the input norms.
   * `scale`: a positive number, or a scalar tensor (e.g. a tf.Variable, to learn it).
   */
  normalize?: { scale: number | tf.Scalar };
}

/** Floats of one Toeplitz pass (features × value columns × positions × groups). */
const PASS_BUDGET = 1 << 22;

/**
 * Kernelized attention with relative positional encoding (Luo et al., NeurIPS 2021, "Stable,
 * Fast and Accurate"): the softmax kernel exp(q·k/√d + b_{j−i}) estimated as
 * c_{j−i}·φ(q_i)·φ(k_j) with c = exp(b), so
 *   out_i = φ(q_i)·(C·F)_i / φ(q_i)·(C·φ(K))_i,   C_ij = c_{j−i},  F_j = φ(k_j) v_jᵀ,
 * with every Toeplitz product C·X by FFT in O(L log L) (toeplitzMatmul; dense on the GPU
 * backends). Causal: C lower-triangular (c_r = 0 for r > 0). relativeBias ≡ 0 gives
 * favorAttention. Gradients reach q, k, v, the bias and a learned normalization scale.
 *
 * q, k [B, H, L, d], v [B, H, L, dv], relativeBias [H, 2L−1] → [B, H, L, dv]. Memory: the
 * products run over blocks of features, O(L·m + L·dv) per (batch, head) beyond one pass.
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ featureMap, relativeBias, causal, mask, method }` (see RpeFavorAttentionOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
 * import { rpeFavorAttention } from '@kernel-attention/core';
 * const [H, L] = [4, 256];
 * const featureMap = softmaxKernelFeatures(32, 64, { seed: 0 });
 * const q = tf.randomNormal([1, H, L, 32], 0, 0.5);
 * const relativeBias = tf.variable(tf.zeros([H, 2 * L - 1]));
 * const out = rpeFavorAttention(q, q, q, { featureMap, relativeBias, causal: true });
 * ```
 */
export function rpeFavorAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: RpeFavorAttentionOptions,
): tf.Tensor4D {
  const fn = 'rpeFavorAttention';
  assertOptions(fn, opts, '{ featureMap, relativeBias }');
  assertFeatureMap(fn, opts.featureMap);
  const causal = opts.causal ?? false;
  const shapes = validateQkv(fn, q, k, v, { causal });
  const { batch: B, heads: H, queryLength: L, keyLength: Lk, dim: d, valueDim: dv } = shapes;
  if (L !== Lk) {
    throw new RangeError(
      `${fn}: relative positions need as many queries as keys, got q ${shapeString(q.shape)} and k ${shapeString(k.shape)}`,
    );
  }
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  const bias = opts.relativeBias;
  assertTensor(fn, 'relativeBias', bias, { rank: 2, dtype: 'float32' }, '[heads, 2·length − 1]');
  if (bias.shape[0] !== H || bias.shape[1] !== 2 * L - 1) {
    throw new RangeError(
      `${fn}: relativeBias must have shape [heads, 2L − 1] = [${H},${2 * L - 1}], got ${shapeString(bias.shape)}`,
    );
  }
  const scale = validateNormalize(fn, opts.normalize);
  const phi = opts.featureMap;
  const method = opts.method;
  if (method !== undefined && method !== 'fft' && method !== 'toeplitz') {
    throw new RangeError(
      `${fn}: method must be 'fft' or 'toeplitz', got ${JSON.stringify(method)}`,
    );
  }
  if (method === 'fft') assertHostFft(fn);
  return tf.tidy(() => {
    let qq = q;
    let kk = k;
    if (scale !== null) {
      // logits scale·q̃·k̃ = q'·k'/√d with q' = q̃·(scale^½·d^¼), k' likewise
      const factor = tf.mul(tf.sqrt(scale), d ** 0.25);
      qq = tf.mul(l2Normalize(q), factor);
      kk = tf.mul(l2Normalize(k), factor);
    }
    const takeB = rangeTaker(B === 1 ? bias : tf.tile(bias, [B, 1]), 0); // row g = head g mod H
    const m = featureWidth(phi, { dim: d });
    return mapGroupBlocks(
      qq,
      kk,
      v,
      opts.mask,
      shapes,
      groupsPerBlock(B * H, L, m),
      ({ g0, size, q: qb, k: kb, v: vb, keep }) => {
        const [fq, side] = callFeatures(fn, phi, qb, kb, keep, causal); // [G, L, m']
        const s = keyStabilizers(side, causal);
        const job = { fq, side, s, v: vb, keep, bias: takeB(g0, size), causal, dv };
        const use = method ?? defaultToeplitzMethod(L);
        return use === 'fft' ? fftAttend(job) : denseAttend(job);
      },
    );
  });
}

/** One block of groups, features computed: what both products need. */
interface RpeJob {
  /** φ(q) [G, L, m'] with its floor */
  fq: tf.Tensor;
  /** keys: φ(k_j; s) = e^{ℓ_j − s}·base_j + floor (see favorAttention's keySide) */
  side: KeySide;
  /** each query's key stabilizer s_i [G, L, 1] (keyStabilizers), or null for position-local maps */
  s: tf.Tensor | null;
  v: tf.Tensor;
  keep: tf.Tensor | null;
  /** b [G, 2L − 1] */
  bias: tf.Tensor;
  causal: boolean;
  dv: number;
}

/** The key stabilizer s_i of every query [G, L, 1]: over the keys it sees (causal: j ≤ i). */
function keyStabilizers(side: KeySide, causal: boolean): tf.Tensor | null {
  const ell = side.logScale;
  if (ell === null) return null;
  return causal ? prefixScan(ell, 'max') : tf.broadcastTo(tf.max(ell, 1, true), ell.shape);
}

/**
 * The quadratic form, every stabilizer per query in the log domain (exactly causal, no FFT noise,
 * and any bias spread): with M_i the largest bias over the offsets query i sees,
 *   W_ij = e^{b_{j−i} − M_i}·(e^{ℓ_j − s_i}·φ(q_i)·base_j + floor·Σ_f φ(q_i)_f)   (visible j),
 *   out_i = Σ_j W_ij v_j / Σ_j W_ij.
 * O(L²(m' + dv)) per group; the default on the GPU backends and for short sequences. `rows`
 * limits it to queries 0 … rows − 1 (causal: they see keys before `rows` only).
 */
function denseAttend(job: RpeJob, rows?: number): tf.Tensor {
  const { side, keep, bias, causal, dv } = job;
  const [G, L] = job.fq.shape as [number, number, number];
  const R = rows ?? L; // queries
  const K = causal ? R : L; // keys they can see
  const cut = (x: tf.Tensor, n: number) =>
    n === x.shape[1] ? x : tf.slice(x, [0, 0, 0], [-1, n, -1]);
  const fq = cut(job.fq, R);
  const base = cut(side.base, K);
  const kLog = side.logScale === null ? null : cut(side.logScale, K);
  const kept = keep === null ? null : cut(keep, K);
  let allowed: tf.Tensor = causal ? tf.reshape(causalKeep(R, K, 0), [1, R, K]) : tf.ones([1, R, K]);
  if (kept !== null) allowed = tf.mul(allowed, tf.reshape(kept, [G, 1, K]));
  const allowedB = tf.cast(tf.broadcastTo(allowed, [G, R, K]), 'bool');
  // b_{j−i} (at index j − i + L − 1) for i < R, j < K: offsets −(R − 1) … K − 1
  const window = tf.slice(bias, [0, L - R], [-1, R + K - 1]) as tf.Tensor2D;
  const logC = toeplitzBlock(window, R, K); // [G, R, K]
  const rowMax = tf.max(tf.where(allowedB, logC, tf.fill([G, R, K], NO_KEY_YET)), -1, true);
  const c = tf.mul(expBelow(logC, rowMax), allowed);
  let w = groupMatMul(fq, transposeLast(base)); // [G, R, K]
  if (kLog !== null) {
    const s = cut(job.s!, R);
    w = tf.mul(w, expBelow(transposeLast(kLog), s));
  }
  if (side.floor !== 0) w = tf.add(w, tf.mul(tf.sum(fq, -1, true), side.floor));
  const vOnes = tf.concat([cut(job.v, K), kept ?? tf.ones([G, K, 1])], 2);
  const numDen = groupMatMul(tf.mul(w, c), vOnes);
  const cols = rangeTaker(numDen, 2);
  return safeDivide(cols(0, dv), cols(dv, 1));
}

/**
 * φ(Q)·(C·(φ(K) ⊗ [V, 1])) by FFT over blocks of features, in O(L log L) per column, with
 * c = e^{b − max b} (per head) and keys at one reference R = max ℓ (per group):
 *   out_i = (A_i + floor·Σ_f φ(q_i)_f·e^{s_i − R}·B_i) / (the same for the denominator column),
 *   A = Σ_f φ(q)_f ⊙ C·(e^{ℓ − R} base_f ⊗ v'),  B = C·v'.
 * The Float64 FFT's error is absolute — about 1e-16 of each column's norm — so a row whose terms
 * are all far below its columns' largest (an early causal query whose few keys sit far below later
 * ones, a large bias spread) would come out as noise. Each row's denominator is compared with that
 * error bound, and the rows up to the last imprecise one are recomputed by the dense form (causal:
 * over the keys they see only, O(r²) for r such rows). Rows that see no key are exactly 0. The
 * FFT's rounding is not causal: later positions move earlier outputs at the 1e-16 level.
 */
function fftAttend(job: RpeJob): tf.Tensor {
  const { fq, side, v, keep, bias, causal, dv } = job;
  const [G, L, m] = fq.shape as [number, number, number];
  const w = dv + 1;
  const c = relativeCoefficients(bias, L, causal); // [G, 2L − 1]
  const vOnes = tf.concat([v, keep ?? tf.ones([G, L, 1])], 2); // [G, L, w], padded rows zero
  let kf = side.base;
  let floorScale: tf.Tensor | null = null;
  if (side.logScale !== null) {
    const R = tf.max(side.logScale, 1, true); // [G, 1, 1]
    kf = tf.mul(kf, expBelow(side.logScale, R));
    floorScale = expBelow(job.s!, R); // [G, L, 1]
  }
  if (keep !== null) kf = tf.mul(kf, keep);
  const block = Math.max(1, Math.min(m, Math.floor(PASS_BUDGET / (G * L * w))));
  const takeQ = rangeTaker(fq, 2);
  const takeK = rangeTaker(kf, 2);
  let acc: tf.Tensor | null = null;
  for (let f0 = 0; f0 < m; f0 += block) {
    const size = Math.min(block, m - f0);
    const next: tf.Tensor = tf.tidy(() => {
      // F_j = φ(k_j)[f0 … f0 + size) ⊗ v'_j, flattened to [G, L, size·w]
      const F = tf.reshape(tf.mul(tf.expandDims(takeK(f0, size), 3), tf.expandDims(vOnes, 2)), [
        G,
        L,
        size * w,
      ]);
      const CF = tf.reshape(toeplitzMatmul(c, F, { method: 'fft' }), [G, L, size, w]);
      const part = tf.sum(tf.mul(tf.expandDims(takeQ(f0, size), 3), CF), 2); // [G, L, w]
      return acc === null ? part : tf.add(acc, part);
    });
    acc?.dispose();
    acc = next;
  }
  let numDen = acc!;
  // the FFT's absolute error per entry is ~ε·log₂P·‖c‖₂ of the largest column it is packed with
  // (two real columns per complex transform): bound it by the largest column norm of the group
  const vMax = tf.add(tf.max(tf.abs(v), [1, 2], true), 1); // [G, 1, 1]
  const eps = 1e-15 * Math.log2(2 * L) * Math.sqrt(2 * L);
  const column = tf.max(tf.sqrt(tf.sum(tf.square(kf), 1, true)), 2, true); // [G, 1, 1]
  let noise = tf.mul(tf.sum(tf.abs(fq), -1, true), tf.mul(tf.mul(column, vMax), eps)); // [G, L, 1]
  if (side.floor !== 0) {
    let f = tf.mul(tf.sum(fq, -1, true), side.floor);
    if (floorScale !== null) f = tf.mul(f, floorScale);
    numDen = tf.add(numDen, tf.mul(f, toeplitzMatmul(c, vOnes, { method: 'fft' })));
    const vNorm = tf.sqrt(tf.sum(tf.square(vOnes), [1, 2], true)); // [G, 1, 1]
    noise = tf.add(noise, tf.mul(tf.abs(f), tf.mul(vNorm, eps)));
  }
  // FFT rounding is not zero where no key is visible: those rows are 0 exactly
  const kept = keep ?? tf.ones([G, L, 1]);
  const seen = tf.greaterEqual(causal ? prefixScan(kept, 'sum') : tf.sum(kept, 1, true), 0.5);
  const cols = rangeTaker(numDen, 2);
  const den = cols(dv, 1);
  // imprecise: a row that sees a key and whose denominator is within 1e6 of the error bound
  const imprecise = tf.logicalAnd(
    tf.broadcastTo(seen, den.shape),
    tf.less(tf.mul(den, 1e-6), noise),
  );
  const flags = tf.any(imprecise, 0).dataSync(); // [L, 1]: any group
  let rows = 0;
  for (let i = L - 1; i >= 0 && rows === 0; i--) if (flags[i]) rows = i + 1;
  const out = tf.mul(safeDivide(cols(0, dv), den), tf.cast(seen, 'float32'));
  if (rows === 0) return out;
  const exact = denseAttend(job, rows);
  return rows === L
    ? exact
    : tf.concat([exact, tf.slice(out, [0, rows, 0], [-1, L - rows, -1])], 1);
}

/** c = exp(b − max b) per row (the constant cancels); causal: c_r = 0 for r > 0 (future keys). */
function relativeCoefficients(bias: tf.Tensor, L: number, causal: boolean): tf.Tensor2D {
  const H = bias.shape[0]!;
  const allowed = causal ? tf.slice(bias, [0, 0], [H, L]) : bias; // r ≤ 0 at indices 0 … L − 1
  const c = expBelow(allowed, tf.max(allowed, 1, true));
  return (causal && L > 1 ? tf.concat([c, tf.zeros([H, L - 1])], 1) : c) as tf.Tensor2D;
}

function l2Normalize(x: tf.Tensor): tf.Tensor {
  const norm = tf.sqrt(tf.sum(tf.square(x), -1, true));
  return tf.div(x, tf.maximum(norm, 1e-12));
}

function validateNormalize(fn: string, normalize: unknown): number | tf.Scalar | null {
  if (normalize === undefined) return null;
  const scale = (normalize as { scale?: unknown } | null)?.scale;
  if (typeof scale === 'number') {
    if (Number.isFinite(scale) && scale > 0) return scale;
  } else if (scale instanceof tf.Tensor) {
    if (scale.rank === 0 && scale.dtype === 'float32') return scale as tf.Scalar;
  }
  const got =
    scale instanceof tf.Tensor
      ? `a ${scale.dtype} tensor of shape ${shapeString(scale.shape)}`
      : String(scale);
  throw new RangeError(
    `${fn}: normalize.scale must be a positive finite number or a float32 scalar tensor, got ${got}`,
  );
}
