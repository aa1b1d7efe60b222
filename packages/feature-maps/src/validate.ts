import type { Tensor } from '@tensorflow/tfjs-core';

/** `[2,3,4]` — how shapes appear in error messages. */
export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Duck-typed tfjs Tensor check that works across module instances. */
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
 */
export function assertTensor(
  fn: string,
  name: string,
  x: unknown,
  req: TensorRequirements,
  layout = '',
): asserts x is Tensor {
  if (!isTensor(x)) {
    throw new TypeError(
      `${fn}: ${name} must be a tf.Tensor, got ${x === null ? 'null' : typeof x}`,
    );
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
