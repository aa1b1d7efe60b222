import { assertTensor, shapeString } from '@kernel-attention/feature-maps';
import type * as tf from '@tensorflow/tfjs-core';

const LAYOUT = '[batch, heads, length, dim]';

export interface AttentionShapes {
  batch: number;
  heads: number;
  queryLength: number;
  keyLength: number;
  /** Last dimension of q and k (or of their features). */
  dim: number;
  valueDim: number;
}

/** One attention call's checked inputs: q, k, v [B, H, ·, ·], the padding mask [B, Lk], the sizes. */
export interface CheckedInputs {
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  mask: tf.Tensor | undefined;
  shapes: AttentionShapes;
}

/**
 * Checks q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv] (float32, rank 4) and returns the sizes.
 * `names` lets linearAttention report qFeat/kFeat. Causal attention needs Lq = Lk.
 */
export function validateQkv(
  fn: string,
  q: unknown,
  k: unknown,
  v: unknown,
  opts: { causal?: boolean; names?: [string, string, string] } = {},
): AttentionShapes {
  const [qn, kn, vn] = opts.names ?? ['q', 'k', 'v'];
  assertTensor(fn, qn, q, { rank: 4, dtype: 'float32' }, LAYOUT);
  assertTensor(fn, kn, k, { rank: 4, dtype: 'float32' }, LAYOUT);
  assertTensor(fn, vn, v, { rank: 4, dtype: 'float32' }, LAYOUT);
  const [B, H, Lq, d] = q.shape as [number, number, number, number];
  const [Bk, Hk, Lk, dk] = k.shape as [number, number, number, number];
  const [Bv, Hv, Lv, dv] = v.shape as [number, number, number, number];
  if (Bk !== B || Hk !== H) {
    throw new RangeError(
      `${fn}: ${qn} and ${kn} must agree in batch and heads, got ${qn} ${shapeString(q.shape)} and ${kn} ${shapeString(k.shape)}`,
    );
  }
  if (dk !== d) {
    throw new RangeError(
      `${fn}: ${qn} and ${kn} must have the same last dimension, got ${qn} ${shapeString(q.shape)} and ${kn} ${shapeString(k.shape)}`,
    );
  }
  if (Bv !== B || Hv !== H || Lv !== Lk) {
    throw new RangeError(
      `${fn}: ${vn} must agree with ${kn} in batch, heads and length, got ${kn} ${shapeString(k.shape)} and ${vn} ${shapeString(v.shape)}`,
    );
  }
  if (opts.causal && Lq !== Lk) {
    throw new RangeError(
      `${fn}: causal attention needs as many queries as keys, got ${qn} ${shapeString(q.shape)} and ${kn} ${shapeString(k.shape)}`,
    );
  }
  if (B * H * Lq * d === 0 || Lk === 0 || dv === 0) {
    throw new RangeError(
      `${fn}: empty inputs are not supported, got ${qn} ${shapeString(q.shape)}, ${kn} ${shapeString(k.shape)}, ${vn} ${shapeString(v.shape)}`,
    );
  }
  return { batch: B, heads: H, queryLength: Lq, keyLength: Lk, dim: d, valueDim: dv };
}

/** Checks a padding mask [B, Lk] (1 keep, 0 pad; float32, int32 or bool). */
export function validateMask(
  fn: string,
  mask: unknown,
  shapes: AttentionShapes,
): asserts mask is tf.Tensor2D {
  assertTensor(
    fn,
    'mask',
    mask,
    { rank: 2, dtype: ['float32', 'int32', 'bool'] },
    '[batch, keyLength] (1 keep, 0 pad)',
  );
  if (mask.shape[0] !== shapes.batch || mask.shape[1] !== shapes.keyLength) {
    throw new RangeError(
      `${fn}: mask must have shape [batch, keyLength] = [${shapes.batch},${shapes.keyLength}], got ${shapeString(mask.shape)}`,
    );
  }
}

export function validateChunkSize(
  fn: string,
  chunkSize: unknown,
  name = 'chunkSize',
): number | undefined {
  if (chunkSize === undefined) return undefined;
  if (typeof chunkSize !== 'number' || !Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`${fn}: ${name} must be a positive integer, got ${String(chunkSize)}`);
  }
  return chunkSize;
}

/** A finite number >= 0 (e.g. denominatorEps), or undefined → 0. */
export function validateNonNegative(fn: string, value: unknown, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${fn}: ${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

/** The most elements one tfjs tensor can hold (tfjs indexes with 32-bit integers). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/** Throws a RangeError naming the sizes unless a float32 tensor of `elements` can be allocated. */
export function assertAllocatable(fn: string, what: string, elements: number): void {
  if (elements > MAX_TENSOR_ELEMENTS) {
    const gib = (elements * 4) / 2 ** 30;
    throw new RangeError(
      `${fn}: ${what} would hold ${elements} float32 values (${gib.toFixed(1)} GiB), more than the ${MAX_TENSOR_ELEMENTS} a tensor can hold`,
    );
  }
}
