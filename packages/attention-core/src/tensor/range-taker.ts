import { backendCapabilities } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Taking pieces of [B·H, L, ·] tensors along an axis (group by group, chunk by chunk), cheaply on
 * every backend.
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
  const caps = backendCapabilities();
  if (!caps.costlySlices || !caps.rangeReads) {
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
