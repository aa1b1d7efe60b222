import {
  assertOptions,
  BidirectionalLinearAttention,
  describeValue,
  type FeatureMap,
  hasFusedKernel,
  isTensor,
  shapeString,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import {
  attendWithMemory,
  type PersistentMemory,
  validateMemory,
} from '../../mechanisms/persistent-memory.js';
import { groupsPerBlock, mapGroupBlocks, maskForGroups } from '../../tensor/group-blocks.js';
import { expBelow, keyFloor, NO_KEY_YET, safeDivide } from '../../tensor/masking.js';
import { groupMatMul, transposeLast } from '../../tensor/products.js';
import { rangeTaker } from '../../tensor/range-taker.js';
import {
  type AttentionShapes,
  validateChunkSize,
  validateMask,
  validateNonNegative,
  validateQkv,
} from '../../tensor/validate.js';
import {
  attendBlock,
  DEFAULT_CHUNK_SIZE,
  type LinearAttentionOptions,
} from '../linear-attention.js';

export interface FavorAttentionOptions extends LinearAttentionOptions {
  /** φ: any FeatureMap (positiveSoftmax for FAVOR+, or your own). */
  featureMap: FeatureMap;
  /**
   * Bidirectional: longest run of positions whose features are computed at once (default 4096).
   * Longer sequences go block by block, keys accumulating φ(K)ᵀV with the key stabilizer kept as
   * a running max (exactly the sequence-wide stabilizer at the end), so memory holds no L×m
   * feature tensor and the passes stay cache-sized. Results do not depend on it.
   */
  featureBlockSize?: number;
  /**
   * Persistent memory (Sukhbaatar et al. 2019): N learned key/value slots per head, visible to
   * every query (also when causal). Their features seed the key-value state and the normaliser.
   */
  memory?: PersistentMemory;
  /**
   * Causal attention with a data-dependent map (one with `prepare`): the fit sees the first
   * min(L, causalFitLength) positions only (default 128), so no output depends on a later one;
   * queries before that use the unfitted map.
   */
  causalFitLength?: number;
  /**
   * Variance-aware shrinkage toward mean(v) (bidirectional only): the output becomes
   * λ·out + (1 − λ)·mean(v) per (batch, head), with λ = signal/(signal + noise) estimated from the
   * estimator itself — its noise from two independent halves of the features, its signal from
   * |out − mean(v)|² minus that noise. Lowers the error where the attention is close to uniform
   * and the features are few (see docs/guides/accuracy.md). Default false.
   */
  shrinkage?: boolean;
}

/** Default causalFitLength. */
export const DEFAULT_CAUSAL_FIT_LENGTH = 128;

/** Default featureBlockSize: up to this length one pass is fastest; beyond, passes outgrow the cache. */
export const DEFAULT_FEATURE_BLOCK = 4096;

export function assertFeatureMap(
  fn: string,
  featureMap: unknown,
): asserts featureMap is FeatureMap {
  const f = featureMap as FeatureMap | undefined;
  if (typeof f !== 'object' || f === null || typeof f.features !== 'function') {
    throw new TypeError(
      `${fn}: featureMap must implement FeatureMap (features(x, role)), got ${f === null ? 'null' : typeof f}`,
    );
  }
}

/**
 * FAVOR+ attention (Choromanski et al. 2020): linear attention on the features of a FeatureMap,
 * an unbiased-kernel estimate of softmax attention in O(L·m·d) time and O(L·m + m·d) memory:
 *   out = D⁻¹ (φ(Q) (φ(K)ᵀ V)),  D = diag(φ(Q) (φ(K)ᵀ 1))   (causal: prefix sums, chunked).
 * Padded keys (mask 0) are zeroed before φ, so they neither shift the key stabilizer nor count in
 * the numerator or denominator. Features are computed per block of (batch, head) groups, so
 * memory grows linearly in L.
 *
 * q, k [B, H, L, d], v [B, H, L, dv] → [B, H, L, dv].
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ featureMap, causal, mask, chunkSize, … }` (see FavorAttentionOptions); featureMap is required
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
 * import { favorAttention } from '@kernel-attention/core';
 * const featureMap = softmaxKernelFeatures(64, 256, { seed: 0 });
 * const q = tf.randomNormal([1, 8, 1024, 64], 0, 0.5);
 * const out = favorAttention(q, q, q, { featureMap, causal: true }); // [1, 8, 1024, 64]
 * ```
 */
export function favorAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: FavorAttentionOptions,
): tf.Tensor4D {
  const fn = 'favorAttention';
  assertOptions(fn, opts, '{ featureMap }');
  assertFeatureMap(fn, opts.featureMap);
  const causal = opts.causal ?? false;
  const shapes = validateQkv(fn, q, k, v, { causal });
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  const chunkSize = validateChunkSize(fn, opts.chunkSize) ?? DEFAULT_CHUNK_SIZE;
  const denominatorEps = validateNonNegative(fn, opts.denominatorEps, 'denominatorEps');
  const featureBlock =
    validateChunkSize(fn, opts.featureBlockSize, 'featureBlockSize') ?? DEFAULT_FEATURE_BLOCK;
  const N = opts.memory === undefined ? 0 : validateMemory(fn, opts.memory, shapes);
  const causalFitLength =
    validateChunkSize(fn, opts.causalFitLength, 'causalFitLength') ?? DEFAULT_CAUSAL_FIT_LENGTH;
  if (opts.shrinkage && causal) {
    throw new RangeError(`${fn}: shrinkage is for bidirectional attention, got causal: true`);
  }
  const settings = {
    causal,
    chunkSize,
    denominatorEps,
    featureBlock,
    causalFitLength,
    shrinkage: opts.shrinkage === true,
  };
  return tf.tidy(() =>
    attendWithMemory(q, k, v, opts.mask, opts.memory, N, causal, shapes, (qq, kk, vv, m, s) =>
      favorAll(fn, opts.featureMap, qq, kk, vv, m, s, settings),
    ),
  );
}

/** favorAttention on checked inputs (also gated attention's path, with key weights). */
export function favorAll(
  fn: string,
  phi: FeatureMap,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  mask: tf.Tensor | undefined,
  shapes: AttentionShapes,
  o: FavorSettings,
): tf.Tensor4D {
  const { causal } = o;
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk, dim: d } = shapes;
  const width = safeNumFeatures(phi) ?? Math.max(d, 64);
  const groups = groupsPerBlock(B * H, Math.max(Lq, Lk), width);
  return mapGroupBlocks(
    q,
    k,
    v,
    mask,
    shapes,
    groups,
    ({ g0, size, q: qb, k: kb, v: vb, keep }) => {
      const weights = o.keyWeights ? maskForGroups(o.keyWeights, g0, size, H, false) : null;
      return withPreparedMap(
        phi,
        qb,
        kb,
        vb,
        keep,
        causal,
        o.causalFitLength,
        (map, qq, kk, vv, kp) =>
          attendGroups(fn, map, qq, kk, vv, kp, {
            ...o,
            // the early (unfitted) part of a causal data-dependent call sees the first positions only
            keyWeights:
              weights === null || kk.shape[1] === weights.shape[1]
                ? weights
                : tf.slice(weights, [0, 0, 0], [-1, kk.shape[1]!, -1]),
          }),
      );
    },
  );
}

/** The settings of one favorAttention call, resolved and checked. */
export interface FavorSettings {
  causal: boolean;
  chunkSize: number;
  denominatorEps: number;
  featureBlock: number;
  causalFitLength: number;
  shrinkage: boolean;
  /**
   * Weights multiplying each key's features (gated attention): [B, Lk] for favorAll, the
   * group rows [G, Lk, 1] once inside a block; null or absent for none.
   */
  keyWeights?: tf.Tensor | null;
}

/**
 * Key features of one block of groups as attention uses them: φ(k_j; s) = e^{ℓ_j − s}·base_j + floor.
 * Maps with keyParts (and the default key stabilizer) give base and ℓ, padded keys' ℓ set to
 * NO_KEY_YET so that they never move the stabilizer s, which attention takes over the keys each
 * query sees. Position-local maps (and performer-pytorch's global stabilizer) give their features
 * as they are: logScale null, the floor split off where the map offers it.
 */
export interface KeySide {
  /** [G, Lk, m'] */
  base: tf.Tensor;
  /** [G, Lk, 1] or null */
  logScale: tf.Tensor | null;
  floor: number;
}

export function keySide(
  fn: string,
  phi: FeatureMap,
  k: tf.Tensor,
  keep: tf.Tensor | null,
  globalAsParts = false,
): KeySide {
  const [G, Lk] = k.shape as [number, number, number];
  if (typeof phi.keyParts === 'function' && (phi.keyStabilizer !== 'global' || globalAsParts)) {
    const parts = phi.keyParts(k);
    if (
      !isTensor(parts?.base) ||
      !isTensor(parts.logScale) ||
      parts.base.rank !== 3 ||
      parts.base.shape[0] !== G ||
      parts.base.shape[1] !== Lk ||
      parts.logScale.rank !== 3 ||
      parts.logScale.shape[1] !== Lk ||
      parts.logScale.shape[2] !== 1 ||
      !(Number.isFinite(parts.floor) && parts.floor >= 0)
    ) {
      throw new RangeError(
        `${fn}: featureMap ${phi.name} keyParts must map [G, L, d] = ${shapeString(k.shape)} to { base [G, L, m'], logScale [G, L, 1], floor >= 0 }, got base ${describeValue(parts?.base)} and logScale ${describeValue(parts?.logScale)}`,
      );
    }
    const logScale =
      keep === null
        ? parts.logScale
        : tf.where(
            tf.cast(keep, 'bool'),
            parts.logScale,
            tf.fill(parts.logScale.shape, NO_KEY_YET),
          );
    return { base: parts.base, logScale, floor: keyFloor(parts.floor) };
  }
  const split = typeof phi.featuresWithoutFloor === 'function' && (phi.floor ?? 0) !== 0;
  const base = split ? phi.featuresWithoutFloor!(k, 'key') : phi.features(k, 'key');
  checkFeatures(fn, phi, base, 'key', [G, Lk]);
  return { base, logScale: null, floor: split ? phi.floor! : 0 };
}

/** Bidirectional keys: the per-key factor e^{ℓ_j − s} (s = max over unpadded keys), times keep. */
function bidirectionalKeyScale(side: KeySide, keep: tf.Tensor | null): tf.Tensor | null {
  if (side.logScale === null) return keep;
  const scale = expBelow(side.logScale, tf.max(side.logScale, [1, 2], true));
  return keep === null ? scale : tf.mul(scale, keep);
}

/** φ(k) in full, [G, Lk, m'] (bidirectional), padded rows zero. */
function bidirectionalKeyFeatures(side: KeySide, keep: tf.Tensor | null): tf.Tensor {
  const scale = bidirectionalKeyScale(side, keep);
  let kf = scale === null ? side.base : tf.mul(side.base, scale);
  if (side.floor !== 0) kf = tf.add(kf, keep === null ? side.floor : tf.mul(keep, side.floor));
  return kf;
}

/**
 * Runs `attend` with the feature map to use for these groups. Maps with `prepare` (data-dependent
 * fits) are fitted to the groups' queries and keys. Bidirectional: on all of them. Causal: the
 * fit may not see the future, so it is made on the first P = min(L, causalFitLength) positions
 * only; queries before P use the unfitted map (over keys before P), queries from P on the fitted
 * one (over all keys up to themselves) — every output depends on no later position, and each
 * query's estimate uses one parameter set for all of its keys.
 */
export function withPreparedMap(
  phi: FeatureMap,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  keep: tf.Tensor | null,
  causal: boolean,
  causalFitLength: number,
  attend: (
    map: FeatureMap,
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    keep: tf.Tensor | null,
  ) => tf.Tensor,
): tf.Tensor {
  if (typeof phi.prepare !== 'function') return attend(phi, q, k, v, keep);
  if (!causal) return withFittedMap(phi, q, k, keep, (map) => attend(map, q, k, v, keep));
  const L = q.shape[1]!;
  const P = Math.min(L, causalFitLength);
  if (P >= L) return attend(phi, q, k, v, keep);
  const head = (x: tf.Tensor) => tf.slice(x, [0, 0, 0], [-1, P, -1]);
  const early = attend(phi, head(q), head(k), head(v), keep === null ? null : head(keep));
  const map = phi.prepare(head(q), head(k), keep === null ? null : head(keep));
  try {
    const all = attend(map, q, k, v, keep);
    return tf.concat([early, tf.slice(all, [0, P, 0], [-1, L - P, -1])], 1);
  } finally {
    map.dispose();
  }
}

/**
 * `use(map)` with `phi` fitted to these groups' queries and keys when it has `prepare` (the fitted
 * map is disposed after), else with `phi` itself. q [G, Lq, d], k [G, Lk, d], keep [G, Lk, 1].
 */
export function withFittedMap<T>(
  phi: FeatureMap,
  q: tf.Tensor,
  k: tf.Tensor,
  keep: tf.Tensor | null,
  use: (map: FeatureMap) => T,
): T {
  if (typeof phi.prepare !== 'function') return use(phi);
  const map = phi.prepare(q, k, keep);
  try {
    return use(map);
  } finally {
    map.dispose();
  }
}

/**
 * Query features [G, Lq, m'] and the key side (keySide) for mechanisms that take a feature map:
 * fitted to the call in bidirectional attention; causal attention uses the unfitted map, which
 * cannot see the future.
 */
export function callFeatures(
  fn: string,
  phi: FeatureMap,
  q: tf.Tensor,
  k: tf.Tensor,
  keep: tf.Tensor | null,
  causal: boolean,
): [tf.Tensor, KeySide] {
  const both = (map: FeatureMap): [tf.Tensor, KeySide] => {
    const side = keySide(fn, map, k, keep);
    const qf = map.features(q, 'query');
    checkFeatures(fn, map, qf, 'query', [q.shape[0]!, q.shape[1]!], side.base.shape[2]);
    return [qf, side];
  };
  return causal ? both(phi) : withFittedMap(phi, q, k, keep, both);
}

/** FAVOR+ for one block of (batch, head) groups with a given map: q [G, Lq, d] … → [G, Lq, dv]. */
function attendGroups(
  fn: string,
  phi: FeatureMap,
  qb: tf.Tensor,
  kb: tf.Tensor,
  vb: tf.Tensor,
  keep: tf.Tensor | null,
  o: FavorSettings,
): tf.Tensor {
  const { causal, chunkSize, denominatorEps, featureBlock } = o;
  const [size, Lq] = qb.shape as [number, number, number];
  const Lk = kb.shape[1]!;
  const keyWeights = o.keyWeights ?? null;
  if (o.shrinkage) return shrunkToMean(fn, phi, qb, kb, vb, keep);
  if (!causal && Math.max(Lq, Lk) > featureBlock && denominatorEps === 0 && keyWeights === null) {
    return blockedBidirectional(fn, phi, qb, kb, vb, keep, featureBlock);
  }
  const side = keySide(fn, phi, kb, keep);
  if (causal) {
    const qf = phi.features(qb, 'query');
    checkFeatures(fn, phi, qf, 'query', [size, Lq], side.base.shape[2]);
    return attendBlock(qf, side.base, vb, true, chunkSize, {
      keep,
      kLog: side.logScale,
      floor: side.floor,
      keyWeights,
      denominatorEps,
    });
  }
  // bidirectional: with a fused kernel registered, plain features go to it; else scales and the
  // floor go to the small products
  const fusedBi = hasFusedKernel(BidirectionalLinearAttention);
  if (fusedBi || denominatorEps !== 0) {
    const qf = phi.features(qb, 'query');
    checkFeatures(fn, phi, qf, 'query', [size, Lq], side.base.shape[2]);
    return attendBlock(qf, bidirectionalKeyFeatures(side, keep), vb, false, chunkSize, {
      keep,
      keyWeights,
      denominatorEps,
    });
  }
  const kScale = bidirectionalKeyScale(side, keep) ?? undefined;
  if (typeof phi.factoredFeatures === 'function') {
    // query features as scale ⊙ rows + their floor
    const fq = phi.factoredFeatures(qb, 'query');
    checkFeatures(fn, phi, fq.rows, 'query', [size, Lq], side.base.shape[2]);
    return attendBlock(fq.rows, side.base, vb, false, chunkSize, {
      floor: side.floor,
      queryFloor: fq.floor,
      keep,
      keyWeights,
      qScale: fq.scale,
      kScale,
    });
  }
  const splitQuery = typeof phi.featuresWithoutFloor === 'function' && (phi.floor ?? 0) !== 0;
  const qf = splitQuery ? phi.featuresWithoutFloor!(qb, 'query') : phi.features(qb, 'query');
  checkFeatures(fn, phi, qf, 'query', [size, Lq], side.base.shape[2]);
  return attendBlock(qf, side.base, vb, false, chunkSize, {
    floor: side.floor,
    queryFloor: splitQuery ? phi.floor! : 0,
    keep,
    keyWeights,
    kScale,
  });
}

/**
 * Bidirectional FAVOR with variance-aware shrinkage toward mean(v) (the `shrinkage` option). The
 * features split into halves [0, m'/2) and [m'/2, m'): numerators and denominators of the full
 * estimate are the sums of the halves', so the half estimates o₁, o₂ cost two small products
 * more. noise ≈ |o₁ − o₂|²/4 (the full estimate's, for independent halves), signal =
 * max(0, |o − mean(v)|² − noise), λ = signal / (signal + noise), per group.
 */
function shrunkToMean(
  fn: string,
  phi: FeatureMap,
  qb: tf.Tensor,
  kb: tf.Tensor,
  vb: tf.Tensor,
  keep: tf.Tensor | null,
): tf.Tensor {
  const [G, Lq] = qb.shape as [number, number, number];
  const Lk = kb.shape[1]!;
  const dv = vb.shape[2]!;
  const kf = bidirectionalKeyFeatures(keySide(fn, phi, kb, keep), keep);
  const qf = phi.features(qb, 'query');
  checkFeatures(fn, phi, qf, 'query', [G, Lq], kf.shape[2]);
  const m = qf.shape[2]!;
  if (m < 2) throw new RangeError(`${fn}: shrinkage needs at least 2 features, got ${m}`);
  const vOnes = tf.concat([vb, keep ?? tf.ones([G, Lk, 1])], 2); // [G, Lk, dv + 1]
  const half = (t: tf.Tensor, from: number, size: number) =>
    tf.slice(t, [0, 0, from], [-1, -1, size]);
  const numDen = (from: number, size: number) =>
    groupMatMul(
      half(qf, from, size),
      transposeLast(groupMatMul(transposeLast(vOnes), half(kf, from, size))),
    );
  const h = Math.floor(m / 2);
  const [n1, n2] = [numDen(0, h), numDen(h, m - h)];
  const ratio = (x: tf.Tensor) =>
    safeDivide(tf.slice(x, [0, 0, 0], [-1, -1, dv]), tf.slice(x, [0, 0, dv], [-1, -1, 1]));
  const out = ratio(tf.add(n1, n2));
  const [o1, o2] = [ratio(n1), ratio(n2)];
  const kept = keep ?? tf.ones([G, Lk, 1]);
  const meanV = tf.div(tf.sum(tf.mul(vb, kept), 1, true), tf.maximum(tf.sum(kept, 1, true), 1));
  const noise = tf.div(tf.sum(tf.square(tf.sub(o1, o2)), [1, 2], true), 4);
  const total = tf.sum(tf.square(tf.sub(out, meanV)), [1, 2], true);
  const signal = tf.relu(tf.sub(total, noise));
  const lambda = tf.div(signal, tf.maximum(tf.add(signal, noise), 1e-30));
  return tf.add(tf.mul(lambda, out), tf.mul(tf.sub(1, lambda), meanV));
}

export function safeNumFeatures(phi: FeatureMap): number | undefined {
  try {
    return phi.numFeatures;
  } catch {
    return undefined; // e.g. a deterministic map that learns d from its first input
  }
}

/**
 * A map's features must be float32 [G, L, m'] tensors, with one m' for queries and keys (`width`,
 * when the other role's is known): a user map that returns anything else gets an error naming it.
 */
export function checkFeatures(
  fn: string,
  phi: FeatureMap,
  f: unknown,
  role: 'query' | 'key',
  lead: [number, number],
  width?: number,
): asserts f is tf.Tensor3D {
  const ok =
    isTensor(f) &&
    f.rank === 3 &&
    f.shape[0] === lead[0] &&
    f.shape[1] === lead[1] &&
    f.dtype === 'float32' &&
    (width === undefined || f.shape[2] === width);
  if (!ok) {
    throw new RangeError(
      `${fn}: featureMap ${phi.name} must map [G, L, d] to float32 [G, L, m'] with the same m' for queries and keys: its ${role} features should be [${lead.join(',')},${width ?? "m'"}], got ${describeValue(f)}`,
    );
  }
}

/**
 * Bidirectional FAVOR+ for long sequences, features computed `block` positions at a time.
 * Keys: with φ(k_j; s) = e^{ℓ_j − s} base_j + floor (keySide), accumulate for a running max r
 *   KVᵀ ← KVᵀ·e^{r_old − r} + (V'_c ⊙ e^{ℓ_c − r})ᵀ base_c,   ΣV' ← ΣV' + 1ᵀV'_c
 * so that at the end (s = r, the largest ℓ of the unpadded keys) KV = Σ_j φ(k_j) v'_jᵀ − floor·1ΣV'ᵀ.
 * Queries: out_c = φ(Q_c)·(KV + floor·1 ΣV'ᵀ) block by block. Position-local maps: ℓ ≡ 0.
 * performer-pytorch's global stabilizer (keyStabilizer 'global') is its keyParts' running max.
 */
function blockedBidirectional(
  fn: string,
  phi: FeatureMap,
  qb: tf.Tensor,
  kb: tf.Tensor,
  vb: tf.Tensor,
  keep: tf.Tensor | null,
  block: number,
): tf.Tensor {
  const [G, Lq] = qb.shape as [number, number, number];
  const Lk = kb.shape[1]!;
  const dv = vb.shape[2]!;
  const takeK = rangeTaker(kb, 1);
  const takeV = rangeTaker(tf.concat([vb, keep ?? tf.ones([G, Lk, 1])], 2), 1); // V' = [V, keep]
  const takeKeep = keep === null ? null : rangeTaker(keep, 1);
  // the global stabilizer counts padded (zeroed) keys too, as features(k, 'key') does
  const global = phi.keyStabilizer === 'global';
  let kvT: tf.Tensor | null = null; // [G, w, m]
  let ref: tf.Tensor = tf.fill([G, 1, 1], NO_KEY_YET);
  let vSum: tf.Tensor = tf.zeros([G, 1, dv + 1]);
  let floor = 0;
  for (let start = 0; start < Lk; start += block) {
    const size = Math.min(block, Lk - start);
    const next = tf.tidy(() => {
      const kc = takeK(start, size);
      const keepC = takeKeep === null ? null : takeKeep(start, size);
      const side = keySide(fn, phi, kc, global ? null : keepC, global);
      const ell = side.logScale ?? tf.zeros([G, size, 1]);
      const vc = takeV(start, size); // [G, C, w]
      const r = tf.maximum(ref, tf.max(ell, [1, 2], true));
      let scale = expBelow(ell, r); // [G, C, 1]
      if (keepC !== null) scale = tf.mul(scale, keepC);
      const term = groupMatMul(transposeLast(tf.mul(vc, scale)), side.base); // [G, w, m]
      return {
        kvT: kvT === null ? term : tf.add(tf.mul(kvT, expBelow(ref, r)), term),
        ref: r,
        vSum: tf.add(vSum, tf.sum(vc, 1, true)),
        floor: side.floor,
      };
    });
    tf.dispose([kvT, ref, vSum].filter((t): t is tf.Tensor => t !== null));
    ({ kvT, ref, vSum, floor } = next);
  }
  const kv = tf.tidy(() => {
    const k = transposeLast(kvT!); // [G, m, w]
    return floor === 0 ? k : tf.add(k, tf.mul(vSum, floor)); // + floor·1_m ΣV'ᵀ (broadcast over m)
  });
  const takeQ = rangeTaker(qb, 1);
  const outs: tf.Tensor[] = [];
  for (let start = 0; start < Lq; start += block) {
    const size = Math.min(block, Lq - start);
    outs.push(
      tf.tidy(() => {
        const qf = phi.features(takeQ(start, size), 'query');
        checkFeatures(fn, phi, qf, 'query', [G, size], kv.shape[1]);
        const numDen = groupMatMul(qf, kv); // [G, C, w]
        const cols = rangeTaker(numDen, 2);
        return safeDivide(cols(0, dv), cols(dv, 1));
      }),
    );
  }
  return outs.length === 1 ? outs[0]! : tf.concat(outs, 1);
}
