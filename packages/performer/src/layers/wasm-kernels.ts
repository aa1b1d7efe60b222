import * as tf from '@tensorflow/tfjs-core';

/** The part of tfjs-backend-wasm's BackendWasm this kernel uses (no import: wasm stays optional). */
interface WasmBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.backend_util.TypedArray;
}

/**
 * UnsortedSegmentSum for tfjs-backend-wasm, which has none: out[s, …] = Σ_{i: ids[i] = s} x[i, …],
 * ids outside [0, numSegments) dropped (TensorFlow's rule). tfjs uses it for the gradient of
 * `gather`, so without it training a tfjs-layers model with an `Embedding` fails on wasm. Computed
 * in JavaScript on the wasm heap (a sum over rows: memory-bound, not a hot path).
 */
function unsortedSegmentSumWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x as tf.TensorInfo;
  const ids = args.inputs.segmentIds as tf.TensorInfo;
  const numSegments = (args.attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments;
  const rows = x.shape[0] ?? 1;
  const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([numSegments, ...x.shape.slice(1)], x.dtype);
  const outValues = backend.typedArrayFromHeap(out);
  outValues.fill(0);
  const xValues = backend.readSync(x.dataId) as tf.backend_util.TypedArray;
  const idValues = backend.readSync(ids.dataId) as tf.backend_util.TypedArray;
  for (let i = 0; i < rows; i++) {
    const s = idValues[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * width;
    const dst = s * width;
    for (let j = 0; j < width; j++) outValues[dst + j]! += xValues[src + j]!;
  }
  return out;
}

/**
 * Registers the kernels that tfjs-backend-wasm lacks and that training tfjs-layers models needs:
 * UnsortedSegmentSum (the gradient of `gather`, hence of `Embedding`). Does nothing for a kernel
 * already registered (a later tfjs version may ship its own). Needs no wasm backend to be loaded.
 */
export function registerWasmKernels(): void {
  if (tf.getKernel(tf.UnsortedSegmentSum, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: tf.UnsortedSegmentSum,
      backendName: 'wasm',
      kernelFunc: unsortedSegmentSumWasm as unknown as tf.KernelFunc,
    });
  }
}
