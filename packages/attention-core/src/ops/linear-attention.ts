import {
  assertOptions,
  BidirectionalLinearAttention,
  type BidirectionalLinearAttentionAttrs,
  type BidirectionalLinearAttentionInputs,
  CausalLinearAttention,
  type CausalLinearAttentionAttrs,
  type CausalLinearAttentionInputs,
  hasFusedKernel,
  matMul,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { groupsPerBlock, mapGroupBlocks } from '../tensor/group-blocks.js';
import { causalKeep, expBelow, NO_KEY_YET, safeDivide } from '../tensor/masking.js';
import { groupMatMul, transposeLast } from '../tensor/products.js';
import { type RangeTaker, rangeTaker } from '../tensor/range-taker.js';
import {
  validateChunkSize,
  validateMask,
  validateNonNegative,
  validateQkv,
} from '../tensor/validate.js';

export interface LinearAttentionOptions {
  causal?: boolean;
  /** [B, Lk] padding mask, 1 keep, 0 pad: padded keys count in neither numerator nor denominator. */
  mask?: tf.Tensor;
  /** Causal chunk length (default 64): exact inside a chunk, state carried between chunks. */
  chunkSize?: number;
  /**
   * Added to every entry of the key sum in the denominator: D_i = φ(q_i)·(z_i + eps·1), as
   * performer-pytorch's causal attention does (eps = 1e-6 there). Default 0.
   */
  denominatorEps?: number;
}

/** Default causal chunk: measured fastest on wasm at L = 4096, m = 256 (see docs/performance.md). */
export const DEFAULT_CHUNK_SIZE = 64;

/**
 * Linear attention from precomputed features (Katharopoulos et al. 2020; Choromanski et al. 2020):
 *   bidirectional  out = D⁻¹ (φ(Q) (φ(K)ᵀ V)),  D = diag(φ(Q) (φ(K)ᵀ 1))
 *   causal         out_i = φ(q_i)·S_i / φ(q_i)·z_i,  S_i = Σ_{j≤i} φ(k_j) v_jᵀ,  z_i = Σ_{j≤i} φ(k_j)
 * The causal form runs chunk by chunk: inside a chunk the masked product (φ(Q_c) φ(K_c)ᵀ ⊙ tril) V_c
 * is exact, across chunks the m×(dv+1) state [S, z] is carried, so no L×m×dv tensor ever exists
 * and the result does not depend on chunkSize. Where a query sees no key (all padded) the output is 0.
 * Non-finite inputs propagate: a NaN or Inf in an unpadded value reaches every output that sees it
 * (and, inside one causal chunk, also the chunk's earlier outputs, since 0·NaN = NaN in the dense
 * chunk product); padded positions may hold anything.
 *
 * qFeat [B, H, Lq, m], kFeat [B, H, Lk, m], v [B, H, Lk, dv] → [B, H, Lq, dv].
 *
 * @param qFeat - query features φ(Q) [B, H, Lq, m']
 * @param kFeat - key features φ(K) [B, H, Lk, m'] (non-negative for a well-defined denominator)
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ causal, mask, chunkSize, eps }` (see LinearAttentionOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { linearAttention } from '@kernel-attention/core';
 * const f = tf.ones([1, 1, 4, 2]);                 // q = k = 1 …
 * const v = tf.tensor4d([1, 2, 3, 4], [1, 1, 4, 1]);
 * linearAttention(f, f, v, { causal: true });      // … gives the running mean: 1, 1.5, 2, 2.5
 * ```
 */
export function linearAttention(
  qFeat: tf.Tensor,
  kFeat: tf.Tensor,
  v: tf.Tensor,
  opts: LinearAttentionOptions = {},
): tf.Tensor4D {
  const fn = 'linearAttention';
  assertOptions(fn, opts, '{ causal?, mask?, chunkSize?, denominatorEps? }', false);
  const shapes = validateQkv(fn, qFeat, kFeat, v, {
    causal: opts.causal,
    names: ['qFeat', 'kFeat', 'v'],
  });
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  const chunkSize = validateChunkSize(fn, opts.chunkSize) ?? DEFAULT_CHUNK_SIZE;
  const denominatorEps = validateNonNegative(fn, opts.denominatorEps, 'denominatorEps');
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk, dim: m } = shapes;
  return tf.tidy(() =>
    mapGroupBlocks(
      qFeat,
      kFeat,
      v,
      opts.mask,
      shapes,
      groupsPerBlock(B * H, Math.max(Lq, Lk), m),
      (blk) =>
        attendBlock(blk.q, blk.k, blk.v, opts.causal ?? false, chunkSize, {
          keep: blk.keep,
          denominatorEps,
        }),
    ),
  );
}

/**
 * Linear attention for one block of groups: qf [G, Lq, m], kf [G, Lk, m], v [G, Lk, dv] →
 * [G, Lq, dv]. The denominator rides along as an extra column of V: ones, or the keep mask
 * [G, Lk, 1] when there is one (padded keys' v rows are zero, so that they count nowhere).
 *
 * Key features are kScale ⊙ kf + floor (bidirectional) or, causal, exp(ℓ_j − s_i)·kf_j + floor
 * with ℓ = kLog and s_i = max_{j≤i} ℓ_j (the exactly causal stabilizer; padded keys at NO_KEY_YET).
 * Query features are qScale ⊙ qf + floor (bidirectional; floor and scales go to the small
 * products as rank-1 corrections instead of to every feature) or qf as given (causal):
 *   (K + f·1)ᵀV' = KᵀV' + f·1 (1ᵀV'),   (Q + f·1)·KV = Q·KV + f·1 (1ᵀKV).
 */
export function attendBlock(
  qf: tf.Tensor,
  kf: tf.Tensor,
  v: tf.Tensor,
  causal: boolean,
  chunkSize: number,
  extra: {
    floor?: number;
    /** Bidirectional: the queries' floor when it differs from the keys' `floor`. */
    queryFloor?: number;
    keep?: tf.Tensor | null;
    qScale?: tf.Tensor;
    kScale?: tf.Tensor;
    kLog?: tf.Tensor | null;
    /** [G, Lk, 1] weights multiplying each key's features (gates), or null */
    keyWeights?: tf.Tensor | null;
    denominatorEps?: number;
  } = {},
): tf.Tensor3D {
  const [G, Lk] = kf.shape as [number, number, number];
  const dv = v.shape[2]!;
  const floor = extra.floor ?? 0;
  if (causal && (extra.qScale || extra.kScale)) {
    throw new Error('attendBlock: row-scale folding is for bidirectional attention only');
  }
  if (!causal && extra.kLog) {
    throw new Error('attendBlock: kLog is for causal attention (bidirectional takes kScale)');
  }
  let vOnes = tf.concat([v, extra.keep ?? tf.ones([G, Lk, 1])], 2); // [G, Lk, dv+1]
  if (extra.keyWeights) vOnes = tf.mul(vOnes, extra.keyWeights);
  const numDen = causal
    ? causalNumDen({ qf, kf, vOnes, chunkSize, kLog: extra.kLog ?? null, floor })
    : bidirectionalNumDen(qf, kf, vOnes, floor, extra.qScale, extra.kScale, extra.queryFloor);
  const cols = rangeTaker(numDen, 2);
  let den = cols(dv, 1);
  const eps = extra.denominatorEps ?? 0;
  if (eps !== 0) {
    if ((!causal && (floor !== 0 || (extra.queryFloor ?? 0) !== 0)) || extra.qScale) {
      throw new Error(
        'attendBlock: denominatorEps needs plain query features (no floor or row scales)',
      );
    }
    den = tf.add(den, tf.mul(tf.sum(qf, -1, true), eps)); // φ(q_i)·(z_i + eps·1)
  }
  return safeDivide(cols(0, dv), den) as tf.Tensor3D;
}

type Triple = [tf.Tensor, tf.Tensor, tf.Tensor];

/**
 * Runs the fused bidirectional kernel registered by a backend (inputs qFeat, kFeat, vOnes; see
 * feature-maps' kernel-names.ts) with its vector-Jacobian product written out: tfjs cannot nest tf.grads inside
 * a gradient function, so the backward pass is three fused products again.
 */
function runFused(
  kernelName: string,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  vjp: (dy: tf.Tensor, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => Triple,
): tf.Tensor3D {
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, b, c, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([a, b, c]); // the backward pass needs the inputs; tfjs keeps saved copies alive
    const inputs = { qFeat: a, kFeat: b, vOnes: c } satisfies Record<
      keyof BidirectionalLinearAttentionInputs,
      tf.Tensor
    >;
    const attrs: BidirectionalLinearAttentionAttrs = {};
    return {
      value: tf.engine().runKernel(kernelName, inputs, attrs) as tf.Tensor3D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => vjp(dy, ...(saved as Triple)),
    };
  });
  return fused(q, k, v) as tf.Tensor3D;
}

/**
 * Q·(Kᵀ V') with the registered fused kernel. Its vector-Jacobian product is three products of the
 * same kind: dQ = dN·(V'ᵀK), dK = V'·(dNᵀQ), dV' = K·(QᵀdN).
 */
function fusedBidirectional(qf: tf.Tensor, kf: tf.Tensor, vOnes: tf.Tensor): tf.Tensor3D {
  return runFused(BidirectionalLinearAttention, qf, kf, vOnes, (dy, q, k, v) => [
    fusedBidirectional(dy, v, k),
    fusedBidirectional(v, dy, q),
    fusedBidirectional(k, q, dy),
  ]);
}

/**
 * φ(Q) (φ(K)ᵀ [V, 1]) as [G, Lq, dv+1]; (φ(K)ᵀ V')ᵀ = V'ᵀ φ(K) keeps every product untransposed.
 * With row scales and a floor (features a ⊙ Q + f and b ⊙ K + f) both go to the small side:
 *   (b ⊙ K + f)ᵀV' = Kᵀ(b ⊙ V') + f·1(1ᵀV'),   (a ⊙ Q + f)·KV = a ⊙ (Q·KV) + f·1(1ᵀKV).
 */
function bidirectionalNumDen(
  qf: tf.Tensor,
  kf: tf.Tensor,
  vOnes: tf.Tensor,
  floor: number,
  qScale?: tf.Tensor,
  kScale?: tf.Tensor,
  queryFloor = floor,
): tf.Tensor3D {
  if (
    floor === 0 &&
    queryFloor === 0 &&
    !qScale &&
    !kScale &&
    hasFusedKernel(BidirectionalLinearAttention)
  ) {
    return fusedBidirectional(qf, kf, vOnes);
  }
  const vT = transposeLast(kScale ? tf.mul(vOnes, kScale) : vOnes); // [G, w, Lk]
  let kv: tf.Tensor = transposeLast(groupMatMul(vT, kf)); // [G, m, w]
  if (floor !== 0) kv = tf.add(kv, tf.mul(tf.sum(vOnes, 1, true), floor)); // + f·1_m (1ᵀV'): [G, 1, w] over m
  let out: tf.Tensor = groupMatMul(qf, kv); // [G, Lq, w]
  if (qScale) out = tf.mul(out, qScale);
  return (
    queryFloor === 0 ? out : tf.add(out, tf.mul(tf.sum(kv, 1, true), queryFloor))
  ) as tf.Tensor3D;
}

/** Lower-triangular ones [C, C] (j ≤ i). */
function tril(c: number): tf.Tensor2D {
  return causalKeep(c, c, 0);
}

/** What causal linear attention works on: features, values with their ones column, settings. */
interface CausalInputs {
  /** [G, L, m] */
  qf: tf.Tensor;
  kf: tf.Tensor;
  /** [G, L, w]: the values and a column of ones (or the keep mask) */
  vOnes: tf.Tensor;
  chunkSize: number;
  /** ℓ [G, L, 1], or null for position-local features */
  kLog: tf.Tensor | null;
  floor: number;
}

/**
 * Causal numerator and denominator [G, L, w] of queries qf against keys exp(ℓ_j − s_i)·kf_j + floor
 * (ℓ = kLog, null for position-local features: ℓ ≡ 0), s_i = max_{j≤i} ℓ_j:
 *   N_i = Σ_{j≤i} (exp(ℓ_j − s_i)·(qf_i·kf_j) + floor·Σ_f qf_if) v'_j.
 * Only keys j ≤ i enter output i — stabilizer included — so changing a later key or value leaves
 * it unchanged bit for bit. The fused kernel where a backend registered one, else tfjs ops by chunks.
 */
function causalNumDen(c: CausalInputs): tf.Tensor3D {
  const { qf, kf, vOnes, kLog, floor } = c;
  if (!hasFusedKernel(CausalLinearAttention)) return compositeCausalNumDen(c);
  const ell = kLog ?? tf.zeros([qf.shape[0]!, qf.shape[1]!, 1]);
  let out: tf.Tensor = fusedCausal(qf, kf, vOnes, tf.neg(prefixScan(ell, 'max')), ell);
  if (floor !== 0) {
    // Σ_{j≤i} floor·(Σ_f qf_if)·v'_j
    out = tf.add(out, tf.mul(tf.mul(tf.sum(qf, -1, true), floor), prefixScan(vOnes, 'sum')));
  }
  return out as tf.Tensor3D;
}

/**
 * Inclusive prefix max or sum along axis 1 of x [G, L, w], in ⌈log₂ L⌉ doubling steps
 * (differentiable, and each entry combines only earlier ones; tfjs's Cumsum gradient is wrong
 * along a middle axis).
 */
export function prefixScan(x: tf.Tensor, op: 'max' | 'sum'): tf.Tensor {
  const [G, L, w] = x.shape as [number, number, number];
  let out = x;
  for (let shift = 1; shift < L; shift *= 2) {
    const filler = op === 'max' ? tf.fill([G, shift, w], NO_KEY_YET) : tf.zeros([G, shift, w]);
    const earlier = tf.concat([filler, tf.slice(out, [0, 0, 0], [G, L - shift, w])], 1);
    out = op === 'max' ? tf.maximum(out, earlier) : tf.add(out, earlier);
  }
  return out;
}

type Quintuple = [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];

/**
 * The registered fused causal kernel, N_i = Σ_{j≤i} e^{a_i + b_j}(q_i·k_j) v_j (a = qLog, b = kLog).
 * Its vector-Jacobian product is the same kernel again, forward and in reversed time:
 *   dq_i = Σ_{j≤i} e^{a_i+b_j}(dN_i·v_j) k_j,   dk_j = Σ_{i≥j} e^{a_i+b_j}(v_j·dN_i) q_i,
 *   dv_j = Σ_{i≥j} e^{a_i+b_j}(k_j·q_i) dN_i,   db_j = k_j·dk_j,   da_i = dN_i·N_i.
 * In reversed time the roles of a and b swap, and their sum stays ≤ 0 (b_j − s_i with s_i ≥ b_j).
 */
function fusedCausal(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  qLog: tf.Tensor,
  kLog: tf.Tensor,
): tf.Tensor3D {
  const rev = (t: tf.Tensor) => tf.reverse(t, 1);
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, b, c, la, lb, save] = args as [...Quintuple, tf.GradSaveFunc];
    const inputs = { qFeat: a, kFeat: b, vOnes: c, qLog: la, kLog: lb } satisfies Record<
      keyof CausalLinearAttentionInputs,
      tf.Tensor
    >;
    const attrs: CausalLinearAttentionAttrs = {};
    const value = tf.engine().runKernel(CausalLinearAttention, inputs, attrs) as tf.Tensor3D;
    save([a, b, c, la, lb, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [qs, ks, vs, as, bs, out] = saved as [...Quintuple, tf.Tensor];
        const dk = rev(fusedCausal(rev(vs), rev(dy), rev(qs), rev(bs), rev(as)));
        return [
          fusedCausal(dy, vs, ks, as, bs),
          dk,
          rev(fusedCausal(rev(ks), rev(qs), rev(dy), rev(bs), rev(as))),
          tf.sum(tf.mul(dy, out), -1, true),
          tf.sum(tf.mul(ks, dk), -1, true),
        ];
      },
    };
  });
  return fused(q, k, v, qLog, kLog) as tf.Tensor3D;
}

/** Σ of x [G, L, w] over the whole chunks before each chunk: [G, ⌈L/C⌉, w] (row c: chunks < c). */
function chunkPrefixSums(x: tf.Tensor, chunkSize: number): tf.Tensor {
  const [G, L, w] = x.shape as [number, number, number];
  const n = Math.ceil(L / chunkSize);
  const padded = n * chunkSize === L ? x : tf.concat([x, tf.zeros([G, n * chunkSize - L, w])], 1);
  const sums = tf.sum(tf.reshape(padded, [G, n, chunkSize, w]), 2); // [G, n, w]
  const inclusive = prefixScan(sums, 'sum');
  if (n === 1) return tf.zerosLike(inclusive);
  return tf.concat([tf.zeros([G, 1, w]), tf.slice(inclusive, [0, 0, 0], [G, n - 1, w])], 1);
}

/**
 * Per-position factors of the chunked causal recurrence, computed once for all positions (a few
 * ops on [G, L, 1] instead of several per chunk): s_i = max_{j≤i} ℓ_j; with r(c) the running
 * maximum at the end of chunk c (r(−1) = NO_KEY_YET) and c(i) the chunk of position i,
 *   gamma_i = e^{r(c(i)−1) − s_i}    (the carried state's weight for query i),
 *   beta_j  = e^{ℓ_j − r(c(j))}     (key j's weight in the state after its chunk),
 *   delta_i = e^{r(c(i)−1) − r(c(i))} (the state's decay across chunk c(i); read at its first row).
 */
function chunkScales(
  kLog: tf.Tensor,
  chunkSize: number,
): { s: tf.Tensor; gamma: tf.Tensor; beta: tf.Tensor; delta: tf.Tensor } {
  const [G, L] = kLog.shape as [number, number, number];
  const s = prefixScan(kLog, 'max');
  const n = Math.ceil(L / chunkSize);
  const padded =
    n * chunkSize === L ? s : tf.concat([s, tf.fill([G, n * chunkSize - L, 1], NO_KEY_YET)], 1);
  // s is non-decreasing, so a chunk's maximum is its last real entry (padding never wins)
  const ends = tf.max(tf.reshape(padded, [G, n, chunkSize]), 2, true); // [G, n, 1]
  const before =
    n === 1
      ? tf.fill([G, 1, 1], NO_KEY_YET)
      : tf.concat([tf.fill([G, 1, 1], NO_KEY_YET), tf.slice(ends, [0, 0, 0], [G, n - 1, 1])], 1);
  const perPosition = (x: tf.Tensor) =>
    tf.slice(
      tf.reshape(tf.broadcastTo(x, [G, n, chunkSize]), [G, n * chunkSize, 1]),
      [0, 0, 0],
      [G, L, 1],
    );
  const end = perPosition(ends);
  const start = perPosition(before);
  return {
    s,
    gamma: expBelow(start, s),
    beta: expBelow(kLog, end),
    delta: expBelow(start, end),
  };
}

/**
 * The composite (tfjs ops) form of causalNumDen, chunk by chunk with state S' = Σ_{j<c} e^{ℓ_j − r} kf_j v'_jᵀ
 * ([G, m, w]) relative to r, the running maximum at the end of the previous chunk. With
 * s_i = max_{j≤i} ℓ_j and r' the running maximum at the end of chunk c (chunkScales), for chunk c:
 *   E_ij = e^{min(ℓ_j − s_i, 0)}·[j ≤ i]
 *   out_c = ((Q_c K_cᵀ) ⊙ E) V'_c + e^{r − s} ⊙ (Q_c S') + floor terms,
 *   S' ← e^{r − r'} S' + K_cᵀ (e^{ℓ_c − r'} ⊙ V'_c).
 * Every factor is ≤ 1. Output i uses s_i and the state of the chunks before it only, so it does
 * not depend on a later key — r' (which may include later keys of the chunk) scales the state
 * that later chunks read.
 */
function compositeCausalNumDen(c: CausalInputs): tf.Tensor3D {
  const { qf, vOnes, chunkSize } = c;
  const L = qf.shape[1]!;
  const w = vOnes.shape[2]!;
  const t = causalTakers(c);
  let state: tf.Tensor = tf.zeros([...t.lead, qf.shape[2]!, w]);
  const outs: tf.Tensor[] = [];
  // the chunk's visibility: 1 on and below the diagonal; and 0 there, −1e30 above, for exponents
  const masks = (c: number) => {
    const mask = tril(c);
    return { mask, future: tf.mul(tf.sub(mask, 1), 1e30) };
  };
  let m = masks(Math.min(chunkSize, L));
  for (let start = 0; start < L; start += chunkSize) {
    const size = Math.min(chunkSize, L - start);
    if (size !== m.mask.shape[0]) {
      tf.dispose([m.mask, m.future]);
      m = masks(size);
    }
    const next = causalChunk(t, state, m, start, size, start + size >= L, chunkSize);
    if (next.state !== state) state.dispose();
    state = next.state;
    outs.push(next.o);
  }
  tf.dispose([state, m.mask, m.future]);
  const all = outs.length === 1 ? outs[0]! : tf.concat(outs, t.axis);
  return (t.single ? tf.reshape(all, [1, L, w]) : all) as tf.Tensor3D;
}

/** What the chunk loop of compositeCausalNumDen takes its pieces from, made once per call. */
interface CausalTakers {
  /** One group: 2-D tensors throughout (no reshapes around each product); else batched. */
  single: boolean;
  axis: number;
  lead: number[];
  q: RangeTaker;
  k: RangeTaker;
  v: RangeTaker;
  /** ℓ as rows [(G,) 1, L], so that a chunk's keys come out as a row without a transpose */
  ell: RangeTaker | null;
  /** chunkScales' s, γ, δ and the values as the state accumulates them, e^{ℓ_j − r(c(j))}·v'_j */
  s: RangeTaker | null;
  gamma: RangeTaker | null;
  delta: RangeTaker | null;
  vState: RangeTaker | null;
  /** floor terms: floor·Σ_f qf_if per query, and Σ v'_j over the chunks before each chunk */
  sq: RangeTaker | null;
  vSum: RangeTaker | null;
  mm: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  tr: (x: tf.Tensor) => tf.Tensor;
}

function causalTakers({ qf, kf, vOnes, chunkSize, kLog, floor }: CausalInputs): CausalTakers {
  const [G, L, m] = qf.shape as [number, number, number];
  const w = vOnes.shape[2]!;
  const single = G === 1;
  const axis = single ? 0 : 1;
  const as = (x: tf.Tensor, rows: number, cols: number) =>
    single ? tf.reshape(x, [rows, cols]) : x;
  const take = (x: tf.Tensor, cols: number, rows = L) => rangeTaker(as(x, rows, cols), axis);
  const scales = kLog === null ? null : chunkScales(kLog, chunkSize);
  return {
    single,
    axis,
    lead: single ? [] : [G],
    q: take(qf, m),
    k: take(kf, m),
    v: take(vOnes, w),
    ell:
      kLog === null
        ? null
        : rangeTaker(single ? tf.reshape(kLog, [1, L]) : transposeLast(kLog), single ? 1 : 2),
    s: scales === null ? null : take(scales.s, 1),
    gamma: scales === null ? null : take(scales.gamma, 1),
    delta: scales === null ? null : take(scales.delta, 1),
    vState: scales === null ? null : take(tf.mul(vOnes, scales.beta), w),
    sq: floor === 0 ? null : take(tf.mul(tf.sum(qf, -1, true), floor), 1),
    vSum: floor === 0 ? null : take(chunkPrefixSums(vOnes, chunkSize), w, -1),
    mm: single ? (a, b) => matMul(a as tf.Tensor2D, b) : groupMatMul,
    tr: single ? (x) => tf.transpose(x) : transposeLast,
  };
}

/**
 * One chunk of causal linear attention: its output rows and the state after it (the same tensor
 * for the last chunk). One tidy: only those two outlive it.
 */
function causalChunk(
  t: CausalTakers,
  state: tf.Tensor,
  { mask, future }: { mask: tf.Tensor; future: tf.Tensor },
  start: number,
  size: number,
  last: boolean,
  chunkSize: number,
): { o: tf.Tensor; state: tf.Tensor } {
  return tf.tidy(() => {
    const qc = t.q(start, size);
    const kcT = t.tr(t.k(start, size)); // [(G,) m, C]
    const vcOut = t.v(start, size); // [(G,) C, w]
    let vc = vcOut; // what the state accumulates
    let scores = t.mm(qc, kcT); // [(G,) C, C]
    let carried = t.mm(qc, state); // [(G,) C, w]
    let decay: tf.Tensor | null = null;
    if (t.ell !== null) {
      // e^{ℓ_j − s_i} for j ≤ i, 0 above the diagonal (exp of −1e30; the clamp keeps any lane
      // finite, see expBelow)
      scores = tf.mul(scores, expBelow(tf.add(t.ell(start, size), future), t.s!(start, size)));
      carried = tf.mul(carried, t.gamma!(start, size)); // e^{r − s_i}
      if (!last) {
        vc = t.vState!(start, size); // e^{ℓ_j − r_new}·v'_j
        decay = t.delta!(start, 1); // e^{r − r_new}
      }
    } else {
      scores = tf.mul(scores, mask);
    }
    if (t.sq !== null) {
      const sq = t.sq(start, size); // [(G,) C, 1]: floor·Σ_f qf_if
      scores = tf.add(scores, tf.mul(sq, mask));
      carried = tf.add(carried, tf.mul(sq, t.vSum!(start / chunkSize, 1))); // Σ_{j<c} v'_j
    }
    const o = tf.add(t.mm(scores, vcOut), carried);
    if (last) return { o, state };
    return { o, state: tf.add(decay === null ? state : tf.mul(state, decay), t.mm(kcT, vc)) };
  });
}
