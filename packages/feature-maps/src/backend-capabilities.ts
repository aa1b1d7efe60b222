import { getBackend } from '@tensorflow/tfjs-core';

/**
 * What the attention ops need to know about a tfjs backend, in one table: the ops ask for a
 * capability, never for a backend's name, so a new backend is described here and nowhere else.
 */
export interface BackendCapabilities {
  /**
   * Tensors can be read synchronously (`dataSync`): Float64 fits on the CPU side (ADERF, SDERF),
   * value checks, gathers whose size depends on the data. tfjs-webgpu has asynchronous reads only.
   */
  syncReads: boolean;
  /**
   * `tf.slice` copies the whole source first (tfjs-wasm 4.22 reads the source out of its heap):
   * chunked loops take their pieces with ranged heap reads instead (see rangeReads).
   */
  costlySlices: boolean;
  /** The backend reads an element range of a tensor out of its memory (tfjs-wasm's readSync(id, start, end)). */
  rangeReads: boolean;
  /**
   * Batched matrix products are many times slower than 2-D ones (tfjs-wasm: its fast XNNPACK path
   * is the 2-D product), so long sequences go one (batch, head) group at a time.
   */
  slowBatchedMatMul: boolean;
  /**
   * Tensor data lives on the host, where our Float64 FFT can work on it without a GPU read-back
   * (tfjs's own GPU FFT is a naive DFT, and wasm has none).
   */
  hostFft: boolean;
  /** Uploads are copied into the backend's own memory, so the source array may be reused. */
  copiesUploads: boolean;
  /**
   * Packed 2×2 texels whose padding lane a matrix product reads (tfjs-webgl): an odd inner
   * dimension needs an explicit zero (see matMul in packed-lanes.ts).
   */
  packedPaddingLanes: boolean;
  /**
   * A custom gradient's saved tensors are copies that tfjs's test-mode leak check counts
   * (tfjs-wasm): keep them as host arrays instead.
   */
  savedTensorsAreCopies: boolean;
}

/** A backend we know nothing about: the safe assumptions (everything works, nothing is fast). */
const GENERIC: BackendCapabilities = {
  syncReads: true,
  costlySlices: false,
  rangeReads: false,
  slowBatchedMatMul: false,
  hostFft: false,
  copiesUploads: false,
  packedPaddingLanes: false,
  savedTensorsAreCopies: false,
};

const TABLE = new Map<string, BackendCapabilities>([
  ['cpu', { ...GENERIC, hostFft: true }],
  [
    'wasm',
    {
      ...GENERIC,
      costlySlices: true,
      rangeReads: true,
      slowBatchedMatMul: true,
      hostFft: true,
      copiesUploads: true,
      savedTensorsAreCopies: true,
    },
  ],
  ['webgl', { ...GENERIC, packedPaddingLanes: true }],
  ['webgpu', { ...GENERIC, syncReads: false }],
]);

/**
 * The capabilities of a backend (default: the active one). Unknown backends get generic ones:
 * synchronous reads, no fast paths.
 *
 * @param backend - a tfjs backend name (default `tf.getBackend()`)
 */
export function backendCapabilities(backend: string = getBackend()): BackendCapabilities {
  return TABLE.get(backend) ?? GENERIC;
}

/**
 * Describes a backend this table does not know (or overrides one): the one place a new backend
 * is taught to the ops.
 *
 * @param backend - the tfjs backend name
 * @param capabilities - what differs from the generic assumptions
 */
export function registerBackendCapabilities(
  backend: string,
  capabilities: Partial<BackendCapabilities>,
): void {
  if (typeof backend !== 'string' || backend === '') {
    throw new TypeError(
      `registerBackendCapabilities: backend must be a name, got ${String(backend)}`,
    );
  }
  TABLE.set(backend, { ...(TABLE.get(backend) ?? GENERIC), ...capabilities });
}

/**
 * The known backends that have a capability (for error messages that say where an op runs).
 *
 * @param capability - a key of BackendCapabilities
 */
export function backendsWith(capability: keyof BackendCapabilities): string[] {
  return [...TABLE].filter(([, c]) => c[capability]).map(([name]) => name);
}
