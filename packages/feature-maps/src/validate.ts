import type { Tensor } from '@tensorflow/tfjs-core';

/**
 * `[2,3,4]` — how shapes appear in error messages.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/**
 * Throws a TypeError naming `fn` unless `opts` is an options object (not null, an array or a
 * primitive), e.g. `softmaxAttention: options { causal?, mask? } must be an object, got null`.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export function assertOptions(
  fn: string,
  opts: unknown,
  expected: string,
  required = true,
): asserts opts is object {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    const got =
      opts === null
        ? 'null'
        : Array.isArray(opts)
          ? 'an array'
          : opts === undefined
            ? 'undefined'
            : typeof opts;
    throw new TypeError(
      `${fn}: options ${expected} ${required ? 'are required' : 'must be an object'}, got ${got}`,
    );
  }
}

/**
 * How a value that should have been a tensor appears in error messages (a tensor: shape and dtype).
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export function describeValue(x: unknown): string {
  if (isTensor(x)) return `${shapeString(x.shape)} (${x.dtype})`;
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'a plain array (wrap it with tf.tensor)';
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name} (wrap it with tf.tensor)`;
  return typeof x;
}

/**
 * Duck-typed tfjs Tensor check that works across module instances.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export function isTensor(x: unknown): x is Tensor {
  return (
    typeof x === 'object' &&
    x !== null &&
    Array.isArray((x as Tensor).shape) &&
    typeof (x as Tensor).dtype === 'string' &&
    typeof (x as Tensor).dataId === 'object'
  );
}

export interface TensorRequirements {
  /** Exact rank, or [min, max] inclusive. */
  rank?: number | readonly [number, number];
  dtype?: 'float32' | 'int32' | 'bool' | readonly ('float32' | 'int32' | 'bool')[];
}

/**
 * Validates a tensor argument; errors name the function, the argument and the shape/dtype
 * received, e.g. `favorAttention: q must be a rank-4 tensor [batch, heads, length, dim], got shape [2,3]`.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export function assertTensor(
  fn: string,
  name: string,
  x: unknown,
  req: TensorRequirements,
  layout = '',
): asserts x is Tensor {
  if (!isTensor(x)) {
    throw new TypeError(`${fn}: ${name} must be a tf.Tensor, got ${describeValue(x)}`);
  }
  if (x.isDisposed) throw new Error(`${fn}: ${name} has been disposed`);
  const suffix = layout ? ` ${layout}` : '';
  if (req.rank !== undefined) {
    const [lo, hi] = typeof req.rank === 'number' ? [req.rank, req.rank] : req.rank;
    if (x.rank < lo || x.rank > hi) {
      const want =
        lo === hi
          ? `a rank-${lo} tensor`
          : hi >= 99
            ? `a tensor of rank >= ${lo}`
            : `a tensor of rank ${lo} to ${hi}`;
      throw new RangeError(
        `${fn}: ${name} must be ${want}${suffix}, got shape ${shapeString(x.shape)}`,
      );
    }
  }
  if (req.dtype !== undefined) {
    const allowed = typeof req.dtype === 'string' ? [req.dtype] : req.dtype;
    if (!allowed.includes(x.dtype as 'float32')) {
      throw new TypeError(
        `${fn}: ${name} must have dtype ${allowed.join(' or ')}, got ${x.dtype} (shape ${shapeString(x.shape)})`,
      );
    }
  }
}
