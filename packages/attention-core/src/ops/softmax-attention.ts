import { assertOptions } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import {
  BLOCK_BUDGET,
  groupsPerBlock,
  mapGroupBlocks,
  maskForGroups,
} from '../tensor/group-blocks.js';
import { causalKeep, maskedSoftmax } from '../tensor/masking.js';
import { groupMatMul, transposeLast } from '../tensor/products.js';
import { rangeTaker } from '../tensor/range-taker.js';
import { type AttentionShapes, validateMask, validateQkv } from '../tensor/validate.js';
import {
  dropPlaceholders,
  joinMemory,
  type PersistentMemory,
  validateMemory,
} from './persistent-memory.js';

export interface SoftmaxAttentionOptions {
  causal?: boolean;
  /** [B, Lk] padding mask, 1 keep, 0 pad. */
  mask?: tf.Tensor;
  /**
   * Persistent memory (Sukhbaatar et al. 2019): N learned key/value slots per head, in one joint
   * softmax with the context, visible to every query (also when causal).
   */
  memory?: PersistentMemory;
}

/**
 * Exact softmax attention, the reference FAVOR+ estimates:
 *   out_i = Σ_j softmax_j(q_i·k_j/√d) v_j
 * over the keys query i may see (j ≤ i when causal; padded keys never; every persistent-memory
 * slot always). A query that sees no key gives 0. Computed per (batch, head) group in blocks of query rows, so memory holds at most
 * a rows×Lk score block, never B·H·Lq·Lk.
 *
 * q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv] → [B, H, Lq, dv].
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ causal, mask, bias }` (optional; see SoftmaxAttentionOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { softmaxAttention } from '@kernel-attention/core';
 * const q = tf.randomNormal([1, 2, 16, 8]);
 * const out = softmaxAttention(q, q, q, { causal: true }); // [1, 2, 16, 8]
 * ```
 */
export function softmaxAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: SoftmaxAttentionOptions = {},
): tf.Tensor4D {
  const fn = 'softmaxAttention';
  assertOptions(fn, opts, '{ causal?, mask?, memory? }', false);
  const causal = opts.causal ?? false;
  const shapes = validateQkv(fn, q, k, v, { causal });
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  if (opts.memory !== undefined) validateMemory(fn, opts.memory, shapes);
  return tf.tidy(() => {
    const joined = joinMemory({ q, k, v, mask: opts.mask, shapes }, opts.memory, causal);
    const { inputs } = joined;
    const out = attendAll(inputs.q, inputs.k, inputs.v, inputs.mask, inputs.shapes, causal);
    return dropPlaceholders(out, joined);
  });
}

/**
 * softmaxAttention on checked inputs. `keyBias` [B, Lk] (optional) is added to every score of key
 * j — a per-key log weight (gatedAttention's log g_j); keys it must exclude are masked instead.
 */
export function attendAll(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  mask: tf.Tensor | undefined,
  shapes: AttentionShapes,
  causal: boolean,
  keyBias?: tf.Tensor,
): tf.Tensor4D {
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk, dim: d } = shapes;
  const scale = 1 / Math.sqrt(d);
  return mapGroupBlocks(
    q,
    k,
    v,
    mask,
    shapes,
    groupsPerBlock(B * H, Lq, Lk),
    ({ g0, size, q: qb, k: kb, v: vb, keep }) => {
      // takers made once per group block: each reads its source out of the heap at most once
      const takeKT = rangeTaker(transposeLast(kb), 2); // [G, d, Lk]
      const takeVb = rangeTaker(vb, 1);
      const takeKeep = keep === null ? null : rangeTaker(tf.reshape(keep, [size, 1, Lk]), 2);
      const takeBias =
        keyBias === undefined
          ? null
          : rangeTaker(tf.reshape(maskForGroups(keyBias, g0, size, H, false), [size, 1, Lk]), 2);
      const keys: GroupKeys = {
        kT: (n) => takeKT(0, n),
        v: (n) => takeVb(0, n),
        keep: takeKeep === null ? null : (n) => takeKeep(0, n),
        bias: takeBias === null ? null : (n) => takeBias(0, n),
        length: Lk,
      };
      const takeRows = rangeTaker(qb, 1);
      const rows = Math.max(1, Math.min(Lq, Math.floor(BLOCK_BUDGET / (size * Lk))));
      const parts: tf.Tensor[] = [];
      for (let r0 = 0; r0 < Lq; r0 += rows) {
        const R = Math.min(rows, Lq - r0);
        parts.push(tf.tidy(() => attendRows(takeRows(r0, R), keys, causal ? r0 : null, scale)));
      }
      return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
    },
  );
}

/** The keys of one group block, taken by prefix length (causal row blocks see a prefix). */
interface GroupKeys {
  /** [G, d, n] */
  kT: (n: number) => tf.Tensor;
  /** [G, n, dv] */
  v: (n: number) => tf.Tensor;
  /** [G, 1, n] keep mask, or null */

  keep: ((n: number) => tf.Tensor) | null;
  /** [G, 1, n] additive per-key score bias, or null */
  bias: ((n: number) => tf.Tensor) | null;
  length: number;
}

/**
 * Softmax attention of R query rows against the group's keys. `causalOffset` is the position of
 * the block's first query, or null when not causal: row i then sees keys j ≤ causalOffset + i.
 * Keys past the block's last visible position are not computed at all.
 */
function attendRows(
  qr: tf.Tensor,
  keys: GroupKeys,
  causalOffset: number | null,
  scale: number,
): tf.Tensor {
  const [G, R] = qr.shape as [number, number, number];
  const visible = causalOffset === null ? keys.length : Math.min(keys.length, causalOffset + R);
  const vv = keys.v(visible);
  const keepV = keys.keep === null ? null : keys.keep(visible);
  let scores = tf.mul(groupMatMul(qr, keys.kT(visible)), scale); // [G, R, visible]
  if (keys.bias !== null) scores = tf.add(scores, keys.bias(visible));
  if (causalOffset !== null && keepV === null) {
    // causal without padding: every row sees at least its own key, so an additive −1e30 bias on
    // the future and tfjs's fused softmax are exact (exp underflows to 0 on the biased entries)
    const bias = tf.mul(tf.sub(causalKeep(R, visible, causalOffset), 1), 1e30); // 0 visible, −1e30 future
    return groupMatMul(tf.reshape(tf.softmax(tf.add(scores, bias)), [G, R, visible]), vv);
  }
  let allowed: tf.Tensor | null = keepV;
  if (causalOffset !== null) {
    const visibleNow = causalKeep(R, visible, causalOffset); // [R, visible]
    allowed =
      allowed === null ? tf.reshape(visibleNow, [1, R, visible]) : tf.mul(allowed, visibleNow);
  }
  if (allowed === null) return groupMatMul(tf.reshape(tf.softmax(scores), [G, R, visible]), vv);
  // masked softmax: rows with nothing allowed → 0
  return groupMatMul(maskedSoftmax(scores, allowed), vv);
}
