import * as tf from '@tensorflow/tfjs-core';
import {
  causalKeep,
  groupMatMul,
  groupsPerBlock,
  mapGroupBlocks,
  rangeTaker,
  safeDivide,
  transposeLast,
} from './groups.js';
import {
  BidirectionalLinearAttention,
  CausalLinearAttention,
  type CausalLinearAttentionAttrs,
  type CausalLinearAttentionInputs,
  hasFusedKernel,
} from './kernel-names.js';
import { validateChunkSize, validateMask, validateNonNegative, validateQkv } from './validate.js';

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
 * Linear attention for one block of groups: qf [G, Lq, m], kf [G, Lk, m] (padded rows already
 * zero), v [G, Lk, dv] → [G, Lq, dv]. The denominator rides along as an extra column of V:
 * ones, or the keep mask [G, Lk, 1] when there is one (so that a floor never counts padded keys).
 *
 * `floor` (bidirectional only): the features are qf + floor and kf + floor·keep, with the
 * constant added here as rank-1 corrections of the small products instead of to every feature:
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
    keep?: tf.Tensor | null;
    qScale?: tf.Tensor;
    kScale?: tf.Tensor;
    denominatorEps?: number;
  } = {},
): tf.Tensor3D {
  const [G, Lk] = kf.shape as [number, number, number];
  const dv = v.shape[2]!;
  const floor = extra.floor ?? 0;
  if (causal && (floor !== 0 || extra.qScale || extra.kScale)) {
    throw new Error(
      'attendBlock: floor and row-scale folding are for bidirectional attention only',
    );
  }
  const vOnes = tf.concat([v, extra.keep ?? tf.ones([G, Lk, 1])], 2); // [G, Lk, dv+1]
  const numDen = causal
    ? causalNumDen(qf, kf, vOnes, chunkSize)
    : bidirectionalNumDen(qf, kf, vOnes, floor, extra.qScale, extra.kScale);
  const cols = rangeTaker(numDen, 2);
  let den = cols(dv, 1);
  const eps = extra.denominatorEps ?? 0;
  if (eps !== 0) {
    if (floor !== 0 || extra.qScale) {
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
 * Runs a fused linear-attention kernel registered by a backend (inputs qFeat, kFeat, vOnes; see
 * kernel-names.ts), with `vjp` as its backward pass. tfjs cannot nest tf.grads inside a gradient
 * function, so the backward passes are written out (both are fused kernels again).
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
      keyof CausalLinearAttentionInputs,
      tf.Tensor
    >;
    const attrs: CausalLinearAttentionAttrs = {};
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
): tf.Tensor3D {
  if (floor === 0 && !qScale && !kScale && hasFusedKernel(BidirectionalLinearAttention)) {
    return fusedBidirectional(qf, kf, vOnes);
  }
  const vT = transposeLast(kScale ? tf.mul(vOnes, kScale) : vOnes); // [G, w, Lk]
  let kv: tf.Tensor = transposeLast(groupMatMul(vT, kf)); // [G, m, w]
  if (floor !== 0) kv = tf.add(kv, tf.mul(tf.sum(vOnes, 1, true), floor)); // + f·1_m (1ᵀV'): [G, 1, w] over m
  let out: tf.Tensor = groupMatMul(qf, kv); // [G, Lq, w]
  if (qScale) out = tf.mul(out, qScale);
  return (floor === 0 ? out : tf.add(out, tf.mul(tf.sum(kv, 1, true), floor))) as tf.Tensor3D;
}

/** Lower-triangular ones [C, C] (j ≤ i). */
function tril(c: number): tf.Tensor2D {
  return causalKeep(c, c, 0);
}

/**
 * Causal numerator and denominator, chunk by chunk, with state S' = Σ φ(k_j) [v_j, 1]ᵀ ([G, m, dv+1]).
 * For chunk c: out_c = (φ(Q_c) φ(K_c)ᵀ ⊙ tril) V'_c + φ(Q_c) S'_{<c};  S'_{≤c} = S'_{<c} + φ(K_c)ᵀ V'_c.
 */
function causalNumDen(
  qf: tf.Tensor,
  kf: tf.Tensor,
  vOnes: tf.Tensor,
  chunkSize: number,
): tf.Tensor3D {
  if (!hasFusedKernel(CausalLinearAttention))
    return compositeCausalNumDen(qf, kf, vOnes, chunkSize);
  // A backend registered the fused kernel. With N_i = Σ_{j≤i} (q_i·k_j) v'_j the vector-Jacobian
  // product is three causal linear attentions of the same kind (→ the fused kernel again):
  //   dQ_i = Σ_{j≤i} (dN_i·v'_j) k_j,  dK_j = Σ_{i≥j} (v'_j·dN_i) q_i,  dV'_j = Σ_{i≥j} (k_j·q_i) dN_i,
  // the last two causal in reversed time.
  const rev = (t: tf.Tensor) => tf.reverse(t, 1);
  return runFused(CausalLinearAttention, qf, kf, vOnes, (dy, q, k, v) => [
    causalNumDen(dy, v, k, chunkSize),
    rev(causalNumDen(rev(v), rev(dy), rev(q), chunkSize)),
    rev(causalNumDen(rev(k), rev(q), rev(dy), chunkSize)),
  ]);
}

/** The composite (tfjs ops) form of causalNumDen, used where no fused kernel is registered. */
function compositeCausalNumDen(
  qf: tf.Tensor,
  kf: tf.Tensor,
  vOnes: tf.Tensor,
  chunkSize: number,
): tf.Tensor3D {
  const [G, L, m] = qf.shape as [number, number, number];
  const w = vOnes.shape[2]!;
  // one group: 2-D tensors throughout (no reshapes around each product); else batched over groups
  const single = G === 1;
  const axis = single ? 0 : 1;
  const as = (x: tf.Tensor, rows: number, cols: number) =>
    single ? tf.reshape(x, [rows, cols]) : x;
  const takeQ = rangeTaker(as(qf, L, m), axis);
  const takeK = rangeTaker(as(kf, L, m), axis);
  const takeV = rangeTaker(as(vOnes, L, w), axis);
  const mm = single
    ? (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)
    : groupMatMul;
  const tr = single ? (x: tf.Tensor) => tf.transpose(x) : transposeLast;
  let state: tf.Tensor = single ? tf.zeros([m, w]) : tf.zeros([G, m, w]);
  const outs: tf.Tensor[] = [];
  let mask = tril(Math.min(chunkSize, L));
  for (let start = 0; start < L; start += chunkSize) {
    const size = Math.min(chunkSize, L - start);
    if (size !== mask.shape[0]) mask = tril(size);
    const last = start + size >= L;
    // one tidy per chunk: only the chunk's output and the carried state outlive it
    const [out, next] = tf.tidy(() => {
      const qc = takeQ(start, size);
      const kcT = tr(takeK(start, size)); // [(G,) m, C]
      const vc = takeV(start, size); // [(G,) C, w]
      const scores = tf.mul(mm(qc, kcT), mask); // [(G,) C, C]
      const o = tf.add(mm(scores, vc), mm(qc, state));
      return [o, last ? state : tf.add(state, mm(kcT, vc))];
    });
    if (next !== state) state.dispose();
    state = next;
    outs.push(out);
  }
  const all = outs.length === 1 ? outs[0]! : tf.concat(outs, axis);
  return (single ? tf.reshape(all, [1, L, w]) : all) as tf.Tensor3D;
}
