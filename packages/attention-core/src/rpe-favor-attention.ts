import { assertTensor, type FeatureMap, shapeString } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { assertFeatureMap, callFeatures } from './favor-attention.js';
import { groupsPerBlock, mapGroupBlocks, rangeTaker, safeDivide } from './groups.js';
import { type ToeplitzMethod, toeplitzMatmul } from './toeplitz.js';
import { validateMask, validateQkv } from './validate.js';

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
  if (typeof opts !== 'object' || opts === null) {
    throw new TypeError(`${fn}: options { featureMap, relativeBias } are required`);
  }
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
  return tf.tidy(() => {
    let qq = q;
    let kk = k;
    if (scale !== null) {
      // logits scale·q̃·k̃ = q'·k'/√d with q' = q̃·(scale^½·d^¼), k' likewise
      const factor = tf.mul(tf.sqrt(scale), d ** 0.25);
      qq = tf.mul(l2Normalize(q), factor);
      kk = tf.mul(l2Normalize(k), factor);
    }
    const c = relativeCoefficients(bias, L, causal); // [H, 2L − 1]
    const takeC = rangeTaker(B === 1 ? c : tf.tile(c, [B, 1]), 0); // row g = head g mod H
    const m = safeWidth(phi) ?? Math.max(d, 64);
    return mapGroupBlocks(
      qq,
      kk,
      v,
      opts.mask,
      shapes,
      groupsPerBlock(B * H, L, m),
      ({ g0, size, q: qb, k: kb, v: vb, keep }) => {
        const [fq, fk0] = callFeatures(phi, qb, kb, keep, causal); // [G, L, m]
        let fk = fk0;
        if (fk.rank !== 3 || fq.rank !== 3 || fk.shape[2] !== fq.shape[2]) {
          throw new RangeError(
            `${fn}: featureMap ${phi.name} must map [G, L, d] to [G, L, m'] with the same m' for queries and keys, got ${shapeString(fq.shape)} and ${shapeString(fk.shape)}`,
          );
        }
        if (keep !== null) fk = tf.mul(fk, keep); // padded keys: no features, so no weight
        return toeplitzAttend(takeC(g0, size), fq, fk, vb, dv, method);
      },
    );
  });
}

/** c = exp(b − max b) per head (the constant cancels); causal: c_r = 0 for r > 0 (future keys). */
function relativeCoefficients(bias: tf.Tensor, L: number, causal: boolean): tf.Tensor2D {
  const H = bias.shape[0]!;
  const allowed = causal ? tf.slice(bias, [0, 0], [H, L]) : bias; // r ≤ 0 at indices 0 … L − 1
  const c = tf.exp(tf.sub(allowed, tf.max(allowed, 1, true)));
  return (causal && L > 1 ? tf.concat([c, tf.zeros([H, L - 1])], 1) : c) as tf.Tensor2D;
}

/** φ(Q)·(C·(φ(K) ⊗ [V, 1])) over blocks of features, then numerator / denominator. */
function toeplitzAttend(
  c: tf.Tensor,
  fq: tf.Tensor,
  fk: tf.Tensor,
  v: tf.Tensor,
  dv: number,
  method: ToeplitzMethod | undefined,
): tf.Tensor {
  const [G, L, m] = fq.shape as [number, number, number];
  const w = dv + 1;
  const vOnes = tf.concat([v, tf.ones([G, L, 1])], 2); // [G, L, w]
  const block = Math.max(1, Math.min(m, Math.floor(PASS_BUDGET / (G * L * w))));
  const takeQ = rangeTaker(fq, 2);
  const takeK = rangeTaker(fk, 2);
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
      const CF = tf.reshape(toeplitzMatmul(c, F, { method }), [G, L, size, w]);
      const part = tf.sum(tf.mul(tf.expandDims(takeQ(f0, size), 3), CF), 2); // [G, L, w]
      return acc === null ? part : tf.add(acc, part);
    });
    acc?.dispose();
    acc = next;
  }
  const cols = rangeTaker(acc!, 2);
  return safeDivide(cols(0, dv), cols(dv, 1));
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

function safeWidth(phi: FeatureMap): number | undefined {
  try {
    return phi.numFeatures;
  } catch {
    return undefined;
  }
}
