import { backendCapabilities, expBelow, matMul } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionShapes } from './validate.js';

/**
 * Helpers for walking [B·H, L, ·] tensors group by group and chunk by chunk.
 *
 * Why not tf.slice or tf.gather on wasm: in tfjs-backend-wasm 4.22 Slice first copies the *whole*
 * source tensor out of the wasm heap (readSync), and Gather runs at about 24 ns per element, so
 * taking the many pieces of a chunked loop from large tensors costs more than the arithmetic.
 * On wasm a RangeTaker therefore copies each contiguous piece straight out of the heap
 * (readSync with a range) and builds strided pieces from one read of the source; when a gradient
 * is being recorded the piece gets a custom gradient (zero-padding dy back to the source shape).
 * Other backends slice cheaply (cpu without a copy, webgl often as a view) and keep tf.slice.
 */
export type RangeTaker = (start: number, size: number) => tf.Tensor;

/** tfjs-backend-wasm's readSync takes an element range [start, end) and copies only that. */
interface RangeReadable {
  readSync(dataId: object, start?: number, end?: number): tf.backend_util.BackendValues;
}

/** Returns take(start, size) = x restricted to [start, start + size) along `axis`. */
export function rangeTaker(x: tf.Tensor, axis: number): RangeTaker {
  const full = x.shape[axis]!;
  if (!backendCapabilities().costlySlices) {
    return (start, size) => {
      if (start === 0 && size === full) return x;
      const begin = x.shape.map((_, i) => (i === axis ? start : 0));
      return tf.slice(
        x,
        begin,
        x.shape.map((d, i) => (i === axis ? size : d)),
      );
    };
  }
  const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  let values: tf.TypedArray | null = null; // strided pieces: the source read out of the heap once
  return (start, size) => {
    if (start === 0 && size === full) return x;
    const shape = x.shape.map((d, i) => (i === axis ? size : d));
    let piece: tf.TypedArray;
    if (outer === 1) {
      // contiguous: read just this range of the heap (whole-source reads dominate at large B·H·L)
      piece = (tf.backend() as RangeReadable).readSync(
        x.dataId,
        start * inner,
        (start + size) * inner,
      ) as tf.TypedArray;
    } else {
      values ??= x.dataSync();
      const src = values;
      piece = new (src.constructor as Float32ArrayConstructor)(outer * size * inner);
      for (let o = 0; o < outer; o++) {
        const from = (o * full + start) * inner;
        piece.set(src.subarray(from, from + size * inner), o * size * inner);
      }
    }
    const paddings = x.shape.map(
      (d, i) => (i === axis ? [start, d - start - size] : [0, 0]) as [number, number],
    );
    const take = tf.customGrad((..._inputs: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.tensor(piece, shape, x.dtype),
      gradFunc: (dy: tf.Tensor) => tf.pad(dy, paddings),
    }));
    return take(x);
  };
}

/**
 * Matrix product of [G, M, K] and [G, K, N] (batched over G). For G = 1 it runs as a 2-D product:
 * tfjs-wasm's fast (XNNPACK) path is the 2-D product without transpose flags, about 14× faster
 * than its batched product at these shapes (see docs/performance.md).
 */
export function groupMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  const [G, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  if (G === 1) {
    return tf.reshape(matMul(tf.reshape(a, [M, K]), tf.reshape(b, [K, N])), [1, M, N]);
  }
  return matMul(a as tf.Tensor3D, b as tf.Tensor3D);
}

/** [G, M, N] → [G, N, M]. */
export function transposeLast(x: tf.Tensor): tf.Tensor3D {
  return tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;
}

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

/**
 * num / den where den ≠ 0, else num (= 0 when every key of a query is padded): finite and
 * differentiable, with one pass over num. The condition is built as −|den| ≥ 0 because tfjs registers a gradient for GreaterEqual but
 * not for NotEqual, and the condition lies on the path from the inputs to the output.
 */
export function safeDivide(num: tf.Tensor, den: tf.Tensor): tf.Tensor {
  // den = 0 exactly only when every visible key's features are 0, and then num = 0 as well
  // (unless a value is NaN/Inf, which must propagate): dividing by 1 there gives 0.
  const zero = tf.greaterEqual(tf.neg(tf.abs(den)), 0);
  return tf.div(num, tf.where(zero, tf.onesLike(den), den));
}

/**
 * 0/1 float mask [rows, cols] with 1 where column j ≤ offset + row i (causal visibility of the
 * block of queries starting at position `offset`). Built in JS and uploaded: tfjs-wasm's
 * broadcasting comparisons (as in tf.linalg.bandPart) take seconds at these sizes.
 */
export function causalKeep(rows: number, cols: number, offset: number): tf.Tensor2D {
  // wasm copies uploads into its heap, so one scratch buffer can serve every call there; other
  // backends (cpu) may keep the array they are given, so they get a fresh one
  const n = rows * cols;
  let data: Float32Array;
  if (backendCapabilities().copiesUploads) {
    if (scratch.length < n) scratch = new Float32Array(n);
    data = scratch.subarray(0, n);
    data.fill(0);
  } else {
    data = new Float32Array(n);
  }
  for (let i = 0; i < rows; i++) data.fill(1, i * cols, i * cols + Math.min(cols, offset + i + 1));
  return tf.tensor2d(data, [rows, cols]);
}
let scratch = new Float32Array(0);

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

/**
 * "Minus infinity" for a running max of log-scales that stays finite in exp(a − b) (and
 * NO_KEY_YET − NO_KEY_YET = 0). −1e19, not −3e38: tfjs-webgl's max reduction starts from −1e20,
 * so a row of −3e38 would come back as −1e20.
 */
export const NO_KEY_YET = -1e19;

/** e^{a − b} for a ≤ b, clamped (see feature-maps' expBelow), for the ops. */
export { expBelow };

/**
 * The least floor attention gives stabilized key features (maps with keyParts, whose largest
 * feature over the keys a query sees is the map's ratio, m'^-1/2 ≥ 1e-2 in practice): 1e-30,
 * some 1e-28 of the largest product, so it changes no result above float32 resolution — except
 * where every product of a query with the keys it sees underflows (logits of hundreds and more).
 * There the weights become uniform over those keys: the output stays a convex combination of the
 * visible values instead of a row of zeros.
 */
export const MIN_KEY_FLOOR = 1e-30;

/** The floor attention uses for keyParts with `floor`. */
export function keyFloor(floor: number): number {
  return Math.max(floor, MIN_KEY_FLOOR);
}

/**
 * Softmax over the last axis where `allowed` (0/1, broadcastable to scores) is 1: exp(s − max over
 * allowed) on allowed entries, normalised; rows with nothing allowed give all zeros.
 */
export function maskedSoftmax(scores: tf.Tensor, allowed: tf.Tensor): tf.Tensor {
  const allowedB = tf.cast(tf.broadcastTo(allowed, scores.shape), 'bool');
  const masked = tf.where(allowedB, scores, tf.fill(scores.shape, -3e38));
  const e = tf.mul(expBelow(masked, tf.max(masked, -1, true)), tf.cast(allowedB, 'float32'));
  return tf.div(e, tf.maximum(tf.sum(e, -1, true), 1e-30));
}

/**
 * Which keys each query may see, as a 0/1 float tensor broadcastable to [B, H, Lq, Lk] scores:
 * [B, 1, 1, Lk] from a padding mask, [1, 1, Lq, Lk] when causal, their product for both; null when
 * every key is visible.
 */
export function visibleKeys(
  mask: tf.Tensor | undefined,
  causal: boolean,
  B: number,
  Lq: number,
  Lk: number,
): tf.Tensor | null {
  const pad =
    mask === undefined ? null : tf.reshape(tf.cast(tf.notEqual(mask, 0), 'float32'), [B, 1, 1, Lk]);
  if (!causal) return pad;
  const c = tf.reshape(causalKeep(Lq, Lk, 0), [1, 1, Lq, Lk]);
  return pad === null ? c : tf.mul(pad, c);
}
