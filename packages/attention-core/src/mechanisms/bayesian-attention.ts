import { assertTensor, matMul, shapeString } from '@kernel-attention/feature-maps';
import { createRng } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { maskedSoftmax, visibleKeys } from '../tensor/masking.js';
import { validateMask, validateQkv } from '../tensor/validate.js';
import { lgamma, lgammaNumber } from './lgamma.js';

/** The Euler–Mascheroni constant γ. */
const EULER_GAMMA = 0.5772156649015329;

export interface BayesianAttentionOptions {
  /** true: sample the attention weights (reparameterised); false: their mean, deterministic. */
  training: boolean;
  /** Weibull shape k > 0 (default 10): larger is less noisy; k → ∞ gives softmax attention. */
  shape?: number;
  /** Seed of the Weibull noise (our own PRNG: the same samples on every backend); required when training. */
  seed?: number;
  causal?: boolean;
  /** [B, Lk] padding mask, 1 keep, 0 pad. */
  mask?: tf.Tensor;
  /**
   * Contextual prior: log α_j [B, H, Lk], the Gamma prior's shape for key j (a function of the
   * keys alone, e.g. a small dense layer on them). Default 0 (α = 1 for every key).
   */
  priorLogits?: tf.Tensor;
  /** The Gamma prior's rate β > 0 (default 1). */
  priorRate?: number;
}

export interface BayesianAttentionResult {
  /** [B, H, Lq, dv] */
  output: tf.Tensor4D;
  /**
   * KL(Weibull ‖ Gamma) summed over heads, queries and visible keys, averaged over the batch:
   * the term an ELBO subtracts (weight it as the training recipe says). Deterministic in the
   * inputs (it does not depend on the sample).
   */
  kl: tf.Scalar;
}

/**
 * Bayesian attention (Fan et al. 2020, Bayesian attention modules; Zhang et al. 2021, Bayesian
 * attention belief networks): the unnormalised weights are random,
 *   W_ij ~ Weibull(k, λ_ij),  λ_ij = exp(Φ_ij − m_i) / Γ(1 + 1/k),  Φ_ij = q_i·k_j/√d,
 * so that E[W_ij] = exp(Φ_ij − m_i) — the softmax numerator, scaled per query by its largest
 * visible score m_i (the normalised weights do not depend on that scale, and it keeps every λ
 * finite) — and the attention is W normalised over the visible keys. Training draws W by the
 * reparameterisation W = λ (−ln(1 − u))^{1/k}, u ~ U(0, 1) from `seed`, so gradients flow to q
 * and k; inference uses E[W], which is exactly softmax attention. Each W_ij has the contextual
 * prior Gamma(α_j, β) (α from `priorLogits`), and the closed-form
 *   KL(Weibull(k, λ) ‖ Gamma(α, β)) = γα/k − α ln λ + ln k + βλΓ(1 + 1/k) − γ − 1 − α ln β + ln Γ(α)
 * is returned with the output. Quadratic in L (it is exact attention with noise).
 *
 * q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv] → { output [B, H, Lq, dv], kl }.
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ mode, shape, prior, seed, causal, mask }`: sampled or mean weights and the Weibull/Gamma parameters (see BayesianAttentionOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { bayesianAttention } from '@kernel-attention/core';
 * const x = tf.randomNormal([2, 4, 32, 16]);
 * const { output, kl } = bayesianAttention(x, x, x, { training: true, shape: 10, seed: 1 });
 * // loss = task loss + klWeight · kl
 * ```
 */
export function bayesianAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: BayesianAttentionOptions,
): BayesianAttentionResult {
  const fn = 'bayesianAttention';
  if (typeof opts !== 'object' || opts === null || typeof opts.training !== 'boolean') {
    throw new TypeError(
      `${fn}: options { training: boolean } are required, got ${String(opts && (opts as { training?: unknown }).training)}`,
    );
  }
  const causal = opts.causal ?? false;
  const s = validateQkv(fn, q, k, v, { causal });
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk, dim: d } = s;
  if (opts.mask !== undefined) validateMask(fn, opts.mask, s);
  const { shape, beta } = checkBayesianOptions(fn, opts, s);
  return tf.tidy(() => {
    const scores = tf.mul(
      matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true),
      1 / Math.sqrt(d),
    );
    const allowed = visibleKeys(opts.mask, causal, B, Lq, Lk);
    const allowedFull = allowed === null ? null : tf.broadcastTo(allowed, scores.shape);
    // log E[W] = Φ − m_i on the visible keys (0 elsewhere, where nothing is used)
    const visibleScores =
      allowedFull === null
        ? scores
        : tf.where(tf.cast(allowedFull, 'bool'), scores, tf.fill(scores.shape, -3e38));
    const logMean0 = tf.sub(scores, tf.max(visibleScores, -1, true));
    const logMean =
      allowedFull === null
        ? logMean0
        : tf.where(tf.cast(allowedFull, 'bool'), logMean0, tf.zerosLike(scores));
    const logW = opts.training ? weibullLogSamples(logMean, shape, opts.seed!) : logMean;
    const weights = allowed === null ? tf.softmax(logW) : maskedSoftmax(logW, allowed);
    const output = matMul(weights as tf.Tensor4D, v as tf.Tensor4D) as tf.Tensor4D;
    const alpha =
      opts.priorLogits === undefined
        ? tf.onesLike(scores)
        : tf.broadcastTo(tf.exp(tf.reshape(opts.priorLogits, [B, H, 1, Lk])), scores.shape);
    const logLambda = tf.sub(logMean, lgammaNumber(1 + 1 / shape));
    let kl = klWeibullGamma(logLambda, shape, alpha, beta);
    if (allowedFull !== null) kl = tf.mul(kl, allowedFull);
    return { output, kl: tf.div(tf.sum(kl), B) as tf.Scalar };
  });
}

/**
 * log W for W ~ Weibull(k, λ) with E[W] = exp(logMean), by reparameterisation:
 *   log W = logMean − ln Γ(1 + 1/k) + (1/k)·ln(−ln(1 − u)),  u ~ U(0, 1) from our PRNG.
 */
export function weibullLogSamples(logMean: tf.Tensor, shape: number, seed: number): tf.Tensor {
  const rng = createRng(seed);
  const noise = new Float32Array(logMean.size);
  for (let i = 0; i < noise.length; i++) {
    const u = Math.min(Math.max(rng.uniform(), 1e-12), 1 - 1e-12);
    noise[i] = Math.log(-Math.log1p(-u)) / shape;
  }
  return tf.tidy(() =>
    tf.add(tf.sub(logMean, lgammaNumber(1 + 1 / shape)), tf.tensor(noise, logMean.shape)),
  );
}

/**
 * KL(Weibull(k, λ) ‖ Gamma(α, β)) elementwise, from log λ:
 *   γα/k − α ln λ + ln k + βλΓ(1 + 1/k) − γ − 1 − α ln β + ln Γ(α).
 *
 * @param logLambda - log of the Weibull scale λ, any shape
 * @param shape - the Weibull shape k (> 0)
 * @param alpha - the Gamma prior's shape α, broadcast against logLambda
 * @param beta - the Gamma prior's rate β (> 0)
 */
export function klWeibullGamma(
  logLambda: tf.Tensor,
  shape: number,
  alpha: tf.Tensor,
  beta: number,
): tf.Tensor {
  return tf.tidy(() => {
    const meanW = tf.exp(tf.add(logLambda, lgammaNumber(1 + 1 / shape))); // λΓ(1 + 1/k)
    const constant = Math.log(shape) - EULER_GAMMA - 1;
    return tf.add(
      tf.add(tf.mul(alpha, EULER_GAMMA / shape - Math.log(beta)), tf.neg(tf.mul(alpha, logLambda))),
      tf.add(tf.add(tf.mul(meanW, beta), constant), lgamma(alpha)),
    );
  });
}

/** Checks the Weibull shape, the prior's rate and logits, and the seed; returns shape and rate. */
function checkBayesianOptions(
  fn: string,
  opts: BayesianAttentionOptions,
  s: ReturnType<typeof validateQkv>,
): { shape: number; beta: number } {
  const { batch: B, heads: H, keyLength: Lk } = s;
  const shape = opts.shape ?? 10;
  if (typeof shape !== 'number' || !Number.isFinite(shape) || shape <= 0) {
    throw new RangeError(
      `${fn}: shape (the Weibull shape k) must be a finite number > 0, got ${String(opts.shape)}`,
    );
  }
  const beta = opts.priorRate ?? 1;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta <= 0) {
    throw new RangeError(
      `${fn}: priorRate must be a finite number > 0, got ${String(opts.priorRate)}`,
    );
  }
  if (opts.training === true && opts.seed === undefined) {
    throw new TypeError(
      `${fn}: training samples the attention weights: pass a seed (an integer; randomness is always explicit), got none`,
    );
  }
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) {
    throw new RangeError(`${fn}: seed must be an integer, got ${String(opts.seed)}`);
  }
  if (opts.priorLogits !== undefined) {
    assertTensor(
      fn,
      'priorLogits',
      opts.priorLogits,
      { rank: 3, dtype: 'float32' },
      '[batch, heads, keyLength]',
    );
    const got = opts.priorLogits.shape;
    if (got[0] !== B || got[1] !== H || got[2] !== Lk) {
      throw new RangeError(
        `${fn}: priorLogits must have shape [batch, heads, keyLength] = [${B},${H},${Lk}], got ${shapeString(got)}`,
      );
    }
  }
  return { shape, beta };
}
