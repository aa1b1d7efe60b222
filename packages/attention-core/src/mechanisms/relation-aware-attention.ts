import {
  assertOptions,
  assertTensor,
  backendCapabilities,
  matMul,
  shapeString,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { maskedSoftmax, visibleKeys } from '../tensor/masking.js';
import { validateMask, validateQkv } from '../tensor/validate.js';

export interface RelationAwareAttentionOptions {
  /**
   * Relation ids r_ij in [0, R): int32 [B, Lq, Lk] (RAT-SQL: one relation per pair, e.g. from a
   * schema graph) or [Lq, Lk] shared by the batch (e.g. clippedRelativePositions).
   */
  relations: tf.Tensor;
  /** a^K [R, d]: added to key j when query i attends to it. */
  relationKeys: tf.Tensor;
  /** a^V [R, dv]: added to value j in query i's output. */
  relationValues: tf.Tensor;
  /** [B, Lk] padding mask, 1 keep, 0 pad. */
  mask?: tf.Tensor;
  causal?: boolean;
}

/**
 * Relation-aware self-attention (Shaw et al. 2018; RAT-SQL, Wang et al. 2020):
 *   e_ij = q_i·(k_j + a^K_{r_ij}) / √d,   α = softmax_j(e),   z_i = Σ_j α_ij (v_j + a^V_{r_ij}).
 * Computed without any [Lq, Lk, d] tensor: q_i·a^K_{r_ij} is gathered from q·a^Kᵀ [Lq, R], and
 * Σ_j α_ij a^V_{r_ij} = Σ_r (Σ_{j: r_ij = r} α_ij) a^V_r sums α by relation first ([Lq, R]), so
 * memory is that of exact attention, O(Lq·Lk) per head. Padded keys and (causal) future keys get
 * no weight; a query that sees no key gives 0. Relation ids are checked to lie in [0, R) (except on
 * WebGPU, where tfjs cannot read them synchronously).
 *
 * q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv] → [B, H, Lq, dv].
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ relations, relationKeys, relationValues, causal, mask }` (see RelationAwareAttentionOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { clippedRelativePositions, relationAwareAttention } from '@kernel-attention/core';
 * const x = tf.randomNormal([1, 2, 10, 8]);
 * const out = relationAwareAttention(x, x, x, {
 *   relations: clippedRelativePositions(10, 3),     // ids 0..6 (Shaw et al.)
 *   relationKeys: tf.randomNormal([7, 8], 0, 0.1),
 *   relationValues: tf.randomNormal([7, 8], 0, 0.1),
 * });
 * ```
 */
export function relationAwareAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: RelationAwareAttentionOptions,
): tf.Tensor4D {
  const fn = 'relationAwareAttention';
  assertOptions(fn, opts, '{ relations, relationKeys, relationValues }');
  const causal = opts.causal ?? false;
  const s = validateQkv(fn, q, k, v, { causal });
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk, dim: d, valueDim: dv } = s;
  if (opts.mask !== undefined) validateMask(fn, opts.mask, s);
  const { relations, relationKeys: aK, relationValues: aV } = opts;
  assertTensor(
    fn,
    'relations',
    relations,
    { rank: [2, 3], dtype: 'int32' },
    '[batch, queryLength, keyLength] relation ids',
  );
  const want = relations.rank === 3 ? [B, Lq, Lk] : [Lq, Lk];
  if (relations.shape.some((n, i) => n !== want[i])) {
    throw new RangeError(
      `${fn}: relations must have shape [batch, queryLength, keyLength] = [${B},${Lq},${Lk}] (or [${Lq},${Lk}] for the whole batch), got ${shapeString(relations.shape)}`,
    );
  }
  assertTensor(fn, 'relationKeys', aK, { rank: 2, dtype: 'float32' }, '[relations, dim]');
  assertTensor(fn, 'relationValues', aV, { rank: 2, dtype: 'float32' }, '[relations, valueDim]');
  const R = aK.shape[0]!;
  if (aK.shape[1] !== d || aV.shape[1] !== dv || aV.shape[0] !== R) {
    throw new RangeError(
      `${fn}: relationKeys must be [R, d] = [R,${d}] and relationValues [R, dv] = [R,${dv}] with one R, got relationKeys ${shapeString(aK.shape)} and relationValues ${shapeString(aV.shape)}`,
    );
  }
  if (R === 0)
    throw new RangeError(
      `${fn}: relationKeys must hold at least one relation, got ${shapeString(aK.shape)}`,
    );
  if (backendCapabilities().syncReads) {
    const [lo, hi] = tf
      .tidy(() => [tf.min(relations), tf.max(relations)])
      .map((t) => {
        const x = t.dataSync()[0]!;
        t.dispose();
        return x;
      }) as [number, number];
    if (lo < 0 || hi >= R) {
      throw new RangeError(
        `${fn}: relation ids must lie in [0, ${R}) (relationKeys has ${R} rows), got ids from ${lo} to ${hi}`,
      );
    }
  }
  return tf.tidy(() => {
    const scale = 1 / Math.sqrt(d);
    const qA = matMul(tf.reshape(q, [B * H * Lq, d]), aK, false, true); // [B·H·Lq, R]
    const rel = byRelation(relations, B, H, R);
    let scores = tf.add(
      matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true),
      rel.gather(tf.reshape(qA, [B, H, Lq, R])),
    );
    scores = tf.mul(scores, scale); // [B, H, Lq, Lk]
    const allowed = visibleKeys(opts.mask, causal, B, Lq, Lk);
    const alpha = (
      allowed === null ? tf.softmax(scores) : maskedSoftmax(scores, allowed)
    ) as tf.Tensor4D;
    const valueTerm = tf.reshape(matMul(tf.reshape(rel.sum(alpha), [B * H * Lq, R]), aV), [
      B,
      H,
      Lq,
      dv,
    ]);
    return tf.add(matMul(alpha, v as tf.Tensor4D), valueTerm) as tf.Tensor4D;
  });
}

/**
 * Shaw et al.'s relative positions as relation ids: r_ij = clip(j − i, −maxDistance, maxDistance)
 * + maxDistance, an int32 [L, L] with ids 0..2·maxDistance (so relationKeys has 2·maxDistance + 1
 * rows). Pass it as `relations` of relationAwareAttention.
 *
 * @param length - the sequence length L
 * @param maxDistance - the clipping distance: relation ids run over 0..2·maxDistance
 */
export function clippedRelativePositions(length: number, maxDistance: number): tf.Tensor2D {
  const fn = 'clippedRelativePositions';
  if (!Number.isInteger(length) || length < 1) {
    throw new RangeError(`${fn}: length must be a positive integer, got ${String(length)}`);
  }
  if (!Number.isInteger(maxDistance) || maxDistance < 0) {
    throw new RangeError(`${fn}: maxDistance must be an integer >= 0, got ${String(maxDistance)}`);
  }
  const ids = new Int32Array(length * length);
  for (let i = 0; i < length; i++) {
    for (let j = 0; j < length; j++) {
      ids[i * length + j] = Math.min(Math.max(j - i, -maxDistance), maxDistance) + maxDistance;
    }
  }
  return tf.tensor2d(ids, [length, length], 'int32');
}

/**
 * The two relation-indexed operations, each the other's gradient:
 *   gather(P [B, H, Lq, R]) [B, H, Lq, Lk] = P[b, h, i, r_bij]
 *   sum(X [B, H, Lq, Lk])   [B, H, Lq, R]  = Σ_{j: r_bij = r} X[b, h, i, j]
 * The sum is tfjs's unsortedSegmentSum where the backend has it, else one masked row-sum per
 * relation (tfjs-wasm has no UnsortedSegmentSum, and so no gradient for gather either).
 */
function byRelation(relations: tf.Tensor, B: number, H: number, R: number) {
  const [Lq, Lk] = relations.shape.slice(-2) as [number, number];
  const segmented = tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined;
  // index tensors are rebuilt from the caller's `relations` at each use: the gradient functions
  // run after this call's tidy has freed its intermediates
  const idsNow = () => tf.broadcastTo(relations, [B, Lq, Lk]) as tf.Tensor3D;
  // P as [B, H, Lq·R]: within each (b, h), entry (i, r_ij) is at i·R + r_ij
  const withinNow = () =>
    tf.reshape(
      tf.add(
        idsNow(),
        tf.reshape(tf.mul(tf.range(0, Lq, 1, 'int32'), tf.scalar(R, 'int32')), [1, Lq, 1]),
      ),
      [B, 1, Lq * Lk],
    );
  // with P [B, H, Lq, R] flattened, entry (b, h, i, r_bij) sits at ((b·H + h)·Lq + i)·R + r_bij
  const flatIdsNow = (): tf.Tensor1D =>
    tf.reshape(
      tf.add(
        tf.reshape(tf.mul(tf.range(0, B * H, 1, 'int32'), tf.scalar(Lq * R, 'int32')), [B, H, 1]),
        tf.broadcastTo(withinNow(), [B, H, Lq * Lk]),
      ),
      [-1],
    );
  const sumPlain = (x: tf.Tensor): tf.Tensor => {
    if (segmented) {
      return tf.reshape(tf.unsortedSegmentSum(tf.reshape(x, [-1]), flatIdsNow(), B * H * Lq * R), [
        B,
        H,
        Lq,
        R,
      ]);
    }
    const ids = idsNow();
    const cols: tf.Tensor[] = [];
    for (let r = 0; r < R; r++) {
      const eq = tf.reshape(tf.cast(tf.equal(ids, r), 'float32'), [B, 1, Lq, Lk]);
      cols.push(tf.sum(tf.mul(x, eq), -1, true));
    }
    return tf.concat(cols, -1);
  };
  const gatherPlain = (p: tf.Tensor): tf.Tensor =>
    tf.reshape(tf.gather(tf.reshape(p, [-1]), flatIdsNow()), [B, H, Lq, Lk]);
  type Op = (x: tf.Tensor) => tf.Tensor;
  const gather: Op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: gatherPlain(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor): tf.Tensor => sum(dy),
  }));
  const sum: Op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: sumPlain(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor): tf.Tensor => gather(dy),
  }));
  return {
    gather: (p: tf.Tensor) => gather(p) as tf.Tensor,
    sum: (x: tf.Tensor) => sum(x) as tf.Tensor,
  };
}
