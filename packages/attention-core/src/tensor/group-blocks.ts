import { backendCapabilities } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { rangeTaker } from './range-taker.js';
import type { AttentionShapes } from './validate.js';

/**
 * Walking (batch, head) groups in blocks: how many at a time, their mask rows, and the walk every
 * attention op shares.
 */

/** Elements of one feature-sized intermediate that one group block may hold (16 MiB of float32). */
export const BLOCK_BUDGET = 1 << 22;

/**
 * How many (batch, head) groups to process together. On wasm, long sequences go one group at a
 * time (2-D products); otherwise as many groups as fit the budget go through batched products,
 * which saves per-op overhead for short sequences and on GPU backends.
 */
export function groupsPerBlock(totalGroups: number, length: number, width: number): number {
  if (backendCapabilities().slowBatchedMatMul && length >= 256) return 1;
  return Math.max(1, Math.min(totalGroups, Math.floor(BLOCK_BUDGET / Math.max(1, length * width))));
}

/**
 * Mask rows [G, L, 1] (float 0/1) for groups g0..g0+G−1 of a [B, L] mask with H heads per batch;
 * with `binary` false, the rows of any float [B, L] tensor as they are.
 */
export function maskForGroups(
  mask: tf.Tensor,
  g0: number,
  G: number,
  heads: number,
  binary = true,
): tf.Tensor3D {
  const m = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
  const keep = binary ? tf.cast(tf.notEqual(m, 0), 'float32') : m;
  if (!binary) {
    // a differentiable row pick (broadcast + slice): tfjs-wasm cannot differentiate gather
    const [B, L] = keep.shape as [number, number];
    const rows = tf.reshape(tf.broadcastTo(tf.reshape(keep, [B, 1, L]), [B, heads, L]), [
      B * heads,
      L,
    ]);
    return tf.reshape(tf.slice(rows, [g0, 0], [G, L]), [G, L, 1]) as tf.Tensor3D;
  }
  const batchOf = Int32Array.from({ length: G }, (_, i) => Math.floor((g0 + i) / heads));
  return tf.expandDims(tf.gather(keep, tf.tensor1d(batchOf, 'int32'), 0), 2) as tf.Tensor3D;
}

/** One block of (batch, head) groups: q [G, Lq, d], k [G, Lk, d], v [G, Lk, dv], keep [G, Lk, 1]. */
export interface GroupBlock {
  g0: number;
  size: number;
  q: tf.Tensor;
  /** Rows of padded keys set to 0 (NaN-safe), so they cannot move a stabilizer or poison a product. */
  k: tf.Tensor;
  /** Rows of padded keys set to 0. */
  v: tf.Tensor;
  /** 0/1 float [G, Lk, 1], or null without a mask. */
  keep: tf.Tensor | null;
}

/**
 * The walk every attention op shares: q, k, v [B, H, L, ·] as B·H groups, `groupsPerBlock` at a
 * time (one tidy per block), padded keys zeroed, `attend` per block ([G, Lq, dv] each), the
 * blocks concatenated back into [B, H, Lq, dv]. Call inside a tidy.
 */
export function mapGroupBlocks(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  mask: tf.Tensor | undefined,
  shapes: AttentionShapes,
  groups: number,
  attend: (block: GroupBlock) => tf.Tensor,
): tf.Tensor4D {
  const { batch: B, heads: H, queryLength: Lq, keyLength: Lk, valueDim: dv } = shapes;
  const takeQ = rangeTaker(tf.reshape(q, [B * H, Lq, q.shape[3]!]), 0);
  const takeK = rangeTaker(tf.reshape(k, [B * H, Lk, k.shape[3]!]), 0);
  const takeV = rangeTaker(tf.reshape(v, [B * H, Lk, dv]), 0);
  const zeroPadded = (x: tf.Tensor, keep: tf.Tensor) =>
    tf.where(tf.broadcastTo(tf.cast(keep, 'bool'), x.shape), x, tf.zerosLike(x));
  const outs: tf.Tensor[] = [];
  for (let g0 = 0; g0 < B * H; g0 += groups) {
    const size = Math.min(groups, B * H - g0);
    outs.push(
      tf.tidy(() => {
        const keep = mask === undefined ? null : maskForGroups(mask, g0, size, H);
        const kb = takeK(g0, size);
        const vb = takeV(g0, size);
        return attend({
          g0,
          size,
          q: takeQ(g0, size),
          k: keep === null ? kb : zeroPadded(kb, keep),
          v: keep === null ? vb : zeroPadded(vb, keep),
          keep,
        });
      }),
    );
  }
  return tf.reshape(outs.length === 1 ? outs[0]! : tf.concat(outs, 0), [B, H, Lq, dv]);
}
