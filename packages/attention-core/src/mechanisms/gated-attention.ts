import {
  assertOptions,
  assertTensor,
  backendCapabilities,
  type FeatureMap,
  shapeString,
} from '@kernel-attention/feature-maps';
import { createRng } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { attendFavor, favorAttention } from '../ops/favor/favor-attention.js';
import { assertFeatureMap, resolveFavorSettings } from '../ops/favor/settings.js';
import { prefixScan } from '../ops/linear-attention.js';
import { attendAll, softmaxAttention } from '../ops/softmax-attention.js';
import { validateMask, validateQkv } from '../tensor/validate.js';

export type GateMode = 'relaxed' | 'hard';

export interface GatedAttentionOptions {
  /**
   * [B, Lk] keep-probabilities p_j in [0, 1], one per key — the output of the caller's gate
   * network (e.g. a dense layer with a sigmoid on the keys); values outside [0, 1] are clipped.
   */
  gates: tf.Tensor;
  /**
   * 'relaxed' (training): relaxed-Bernoulli gates g_j = σ((logit p_j + logit u_j)/τ), u_j ~ U(0, 1)
   * from `seed` — differentiable in p. 'hard' (inference): g_j = 1 where p_j > 0.5, else 0, and
   * only the kept keys are attended to (gathered, so the compute drops with the keys).
   */
  mode: GateMode;
  /** Relaxation temperature τ > 0 (default 0.5); smaller is closer to Bernoulli samples. */
  temperature?: number;
  /** Seed of the relaxed gates' uniform noise (our own PRNG: the same gates on every backend); required in relaxed mode. */
  seed?: number;
  /** With a feature map: FAVOR+-style linear attention whose key features are scaled by g_j. */
  featureMap?: FeatureMap;
  causal?: boolean;
  /** [B, Lk] padding mask, 1 keep, 0 pad: padded keys are closed whatever their gate. */
  mask?: tf.Tensor;
  /** Also return the sparsity penalty (see GatedAttentionResult). */
  returnPenalty?: boolean;
}

export interface GatedAttentionResult {
  output: tf.Tensor4D;
  /**
   * GA-Net's sparsity penalty: the mean keep-probability over the unpadded keys (the expected
   * fraction of open gates, an L1 norm of p), a scalar to add to the loss with a weight.
   */
  penalty: tf.Scalar;
}

/**
 * Gated attention (GA-Net, Xue et al. 2019): an auxiliary gate network decides per key whether it
 * takes part. With gates g_j the weights become α_ij ∝ g_j·exp(q_i·k_j/√d) (softmax) or
 * φ(q_i)·(g_j φ(k_j)) (with a feature map), normalised over the keys query i may see.
 * Training samples relaxed-Bernoulli gates; inference thresholds p at 0.5 and attends only to the
 * kept keys — bidirectional attention gathers them per batch item (so the cost is that of the
 * kept keys); causal attention, and any attention on WebGPU (where tfjs cannot read the gates
 * synchronously), masks the closed keys instead, with the same result.
 * A query that sees no open key (every gate closed) gives 0, as a fully padded one does.
 *
 * q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv], gates [B, Lk] → [B, H, Lq, dv]
 * (or { output, penalty } with returnPenalty).
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ gates, mode, temperature, seed, causal, mask, returnPenalty }` (see GatedAttentionOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { gatedAttention } from '@kernel-attention/core';
 * const x = tf.randomNormal([1, 2, 16, 8]);
 * const gates = tf.sigmoid(tf.randomNormal([1, 16])); // a gate network's output
 * const { output, penalty } = gatedAttention(x, x, x, {
 *   gates, mode: 'relaxed', temperature: 0.5, seed: 1, returnPenalty: true,
 * });
 * ```
 */
export function gatedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: GatedAttentionOptions & { returnPenalty: true },
): GatedAttentionResult;
/**
 * Gated attention without the penalty: the output only (see the first form).
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ gates, mode, temperature, seed, causal, mask }` (see GatedAttentionOptions)
 */
export function gatedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: GatedAttentionOptions,
): tf.Tensor4D;
export function gatedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: GatedAttentionOptions,
): tf.Tensor4D | GatedAttentionResult {
  const fn = 'gatedAttention';
  assertOptions(fn, opts, '{ gates, mode }');
  const causal = opts.causal ?? false;
  const shapes = validateQkv(fn, q, k, v, { causal });
  const tau = checkGateOptions(fn, opts, shapes);
  const phi = opts.featureMap;
  const result = tf.tidy(() => {
    // NaN gates reach the outputs through withNanGates; inside, they count as closed, so that a
    // NaN cannot spread to outputs that do not see its key (0·NaN in a causal chunk's product)
    const p = tf.where(
      tf.isNaN(opts.gates),
      tf.zerosLike(opts.gates),
      tf.clipByValue(opts.gates, 0, 1),
    );
    const keep = opts.mask === undefined ? null : tf.cast(tf.notEqual(opts.mask, 0), 'float32'); // [B, Lk]
    let output: tf.Tensor4D;
    if (opts.mode === 'hard') {
      // p > 1/2, as 1 − [1/2 ≥ p]: GreaterEqual is the comparison tfjs differentiates (to zero)
      let open = tf.sub(1, tf.cast(tf.greaterEqual(0.5, p), 'float32'));
      if (keep !== null) open = tf.mul(open, keep);
      const base = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, mask?: tf.Tensor) =>
        phi === undefined
          ? softmaxAttention(qq, kk, vv, { causal, mask })
          : favorAttention(qq, kk, vv, { featureMap: phi, causal, mask });
      output =
        causal || !backendCapabilities().syncReads
          ? base(q, k, v, open)
          : gatherOpenKeys(q, k, v, open, base);
    } else {
      const g = relaxedGates(p, tau, opts.seed!);
      const gk = keep === null ? g : tf.mul(g, keep); // padded keys closed
      output =
        phi === undefined
          ? softmaxWithGates(q, k, v, gk, opts.mask, shapes, causal)
          : featuresWithGates(phi, q, k, v, gk, opts.mask, causal, shapes);
    }
    return {
      output: withNanGates(output, opts.gates, keep, causal),
      penalty: sparsityPenalty(opts.gates, p, keep),
    };
  });
  if (opts.returnPenalty) return result;
  result.penalty.dispose();
  return result.output;
}

/** Checks the gates and the gate options against the call; returns the temperature. */
function checkGateOptions(
  fn: string,
  opts: GatedAttentionOptions,
  shapes: ReturnType<typeof validateQkv>,
): number {
  const { batch: B, keyLength: Lk } = shapes;
  assertTensor(
    fn,
    'gates',
    opts.gates,
    { rank: 2, dtype: 'float32' },
    '[batch, keyLength] keep-probabilities',
  );
  if (opts.gates.shape[0] !== B || opts.gates.shape[1] !== Lk) {
    throw new RangeError(
      `${fn}: gates must have shape [batch, keyLength] = [${B},${Lk}], got ${shapeString(opts.gates.shape)}`,
    );
  }
  if (opts.mode !== 'relaxed' && opts.mode !== 'hard') {
    throw new RangeError(
      `${fn}: mode must be 'relaxed' or 'hard', got ${JSON.stringify(opts.mode)}`,
    );
  }
  const tau = opts.temperature ?? 0.5;
  if (typeof tau !== 'number' || !Number.isFinite(tau) || tau <= 0) {
    throw new RangeError(
      `${fn}: temperature must be a finite number > 0, got ${String(opts.temperature)}`,
    );
  }
  if (opts.mode === 'relaxed' && opts.seed === undefined) {
    throw new TypeError(
      `${fn}: relaxed gates are sampled: pass a seed (an integer; randomness is always explicit), got none`,
    );
  }
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) {
    throw new RangeError(`${fn}: seed must be an integer, got ${String(opts.seed)}`);
  }
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  if (opts.featureMap !== undefined) assertFeatureMap(fn, opts.featureMap);
  return tau;
}

/** The mean keep-probability over unpadded keys (NaN gates of unpadded keys count as NaN). */
function sparsityPenalty(gates: tf.Tensor, p: tf.Tensor, keep: tf.Tensor | null): tf.Scalar {
  const pen = tf.where(tf.isNaN(gates), gates, p);
  if (keep === null) return tf.mean(pen);
  return tf.div(
    tf.sum(tf.where(tf.cast(keep, 'bool'), pen, tf.zerosLike(pen))),
    tf.maximum(tf.sum(keep), 1),
  ) as tf.Scalar;
}

/**
 * NaN propagation for the gates: a NaN gate of an unpadded key reaches every output that sees the
 * key (as a NaN value would), instead of being clipped or compared into a finite gate.
 */
function withNanGates(
  output: tf.Tensor4D,
  gates: tf.Tensor,
  keep: tf.Tensor | null,
  causal: boolean,
): tf.Tensor4D {
  const [B, , Lq] = output.shape;
  const Lk = gates.shape[1]!;
  let poison = tf.where(tf.isNaN(gates), tf.fill(gates.shape, Number.NaN), tf.zerosLike(gates));
  if (keep !== null) poison = tf.where(tf.cast(keep, 'bool'), poison, tf.zerosLike(poison));
  const seen = causal
    ? tf.reshape(prefixScan(tf.reshape(poison, [B, Lk, 1]), 'sum'), [B, 1, Lq, 1])
    : tf.reshape(tf.sum(poison, 1), [B, 1, 1, 1]);
  return tf.add(output, seen) as tf.Tensor4D;
}

/**
 * Relaxed Bernoulli (Concrete) gates g = σ((logit p + logit u)/τ) with u from our PRNG; exactly 0
 * and 1 where p is 0 or 1 (the logit branch sees a clipped p, so its gradient stays finite).
 * P(g > 1/2) = p for every τ; as τ → 0 the gates become Bernoulli(p) samples.
 *
 * @param p - keep-probabilities in [0, 1], any shape
 * @param temperature - τ > 0: lower is closer to hard 0/1 gates
 * @param seed - seed of the uniform noise u (our PRNG: the same gates on every backend)
 */
export function relaxedGates(p: tf.Tensor, temperature: number, seed: number): tf.Tensor {
  const rng = createRng(seed);
  const u = Float32Array.from({ length: p.size }, () =>
    Math.min(Math.max(rng.uniform(), 1e-7), 1 - 1e-7),
  );
  return tf.tidy(() => {
    const logitU = tf.tensor(
      u.map((x) => Math.log(x) - Math.log1p(-x)),
      p.shape,
    );
    const pc = tf.clipByValue(p, 1e-7, 1 - 1e-7);
    const logitP = tf.sub(tf.log(pc), tf.log1p(tf.neg(pc)));
    const g = tf.sigmoid(tf.div(tf.add(logitP, logitU), temperature));
    return tf.where(
      tf.greaterEqual(tf.neg(p), 0), // p ≤ 0 (GreaterEqual is the comparison tfjs can differentiate)
      tf.zerosLike(p),
      tf.where(tf.greaterEqual(p, 1), tf.onesLike(p), g),
    );
  });
}

/** Gates below this count as closed (their weight g·e^s is negligible beside any open key's). */
const OPEN_GATE = 1e-30;

/**
 * Softmax with per-key weights g: log g added to the scores, −1e30 for closed keys (weight exactly
 * 0 beside any open key); rows that see no open key are set to 0 afterwards. Only GreaterEqual,
 * which tfjs differentiates, compares the gates, so gradients reach them.
 */
function softmaxWithGates(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  mask: tf.Tensor | undefined,
  shapes: ReturnType<typeof validateQkv>,
  causal: boolean,
): tf.Tensor4D {
  const { batch: B, queryLength: Lq } = shapes;
  const open = tf.greaterEqual(g, OPEN_GATE); // [B, Lk]
  const logG = tf.where(open, tf.log(tf.where(open, g, tf.onesLike(g))), tf.fill(g.shape, -1e30));
  const out = attendAll(q, k, v, mask, shapes, causal, logG);
  let openF = tf.cast(open, 'float32');
  if (mask !== undefined) openF = tf.mul(openF, tf.cast(tf.notEqual(mask, 0), 'float32'));
  // does query i see an open key? (any open key; causal: any open key j ≤ i)
  const seen = causal ? tf.cumsum(openF, 1) : tf.sum(openF, 1, true);
  const any = tf.cast(tf.greaterEqual(seen, 0.5), 'float32');
  return tf.mul(out, tf.reshape(causal ? any : tf.tile(any, [1, Lq]), [B, 1, Lq, 1]));
}

/**
 * FAVOR with key features g_j·φ(k_j): favorAttention's own path with the gates as key weights, so
 * the key stabilizer runs over the keys each query sees (exactly causal) and padded keys count
 * nowhere, as in favorAttention.
 */
function featuresWithGates(
  phi: FeatureMap,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  mask: tf.Tensor | undefined,
  causal: boolean,
  shapes: ReturnType<typeof validateQkv>,
): tf.Tensor4D {
  const fn = 'gatedAttention';
  return attendFavor(fn, phi, { q, k, v, mask, shapes }, resolveFavorSettings(fn, { causal }), g);
}

/** Bidirectional hard gates: per batch item, attention over its open keys only (gathered). */
function gatherOpenKeys(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  open: tf.Tensor,
  base: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor4D,
): tf.Tensor4D {
  const [, H, Lq] = q.shape as [number, number, number, number];
  const dv = v.shape[3]!;
  const rows = open.arraySync() as number[][];
  const outs = rows.map((row, b) => {
    const idx = row.flatMap((o, j) => (o > 0 ? [j] : []));
    if (idx.length === 0) return tf.zeros([1, H, Lq, dv]); // no open key: 0, as a fully padded query
    const item = (x: tf.Tensor) => tf.slice(x, [b, 0, 0, 0], [1, -1, -1, -1]);
    const pick = (x: tf.Tensor) =>
      idx.length === row.length ? item(x) : tf.gather(item(x), tf.tensor1d(idx, 'int32'), 2);
    return base(item(q), pick(k), pick(v));
  });
  return (outs.length === 1 ? outs[0]! : tf.concat(outs, 0)) as tf.Tensor4D;
}
