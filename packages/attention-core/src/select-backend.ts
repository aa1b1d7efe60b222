import * as tf from '@tensorflow/tfjs-core';

/** The default preference: fastest first where each really runs. */
export const DEFAULT_BACKEND_ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;

export interface BackendSelection {
  backend: string;
  /** Why each backend tried before the chosen one was rejected. */
  rejected: Record<string, string>;
}

/**
 * Activates the first backend of `preferred` that is registered and initialises, and says why the
 * others were rejected. Import the backend packages you want considered first.
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-wasm';
 * import '@tensorflow/tfjs-backend-cpu';
 * import { selectBackend } from '@kernel-attention/core';
 * const { backend, rejected } = await selectBackend(); // e.g. 'wasm', { webgpu: 'not registered …', … }
 * ```
 */
export async function selectBackend(
  preferred: readonly string[] = DEFAULT_BACKEND_ORDER,
): Promise<BackendSelection> {
  if (
    !Array.isArray(preferred) ||
    preferred.length === 0 ||
    preferred.some((p) => typeof p !== 'string')
  ) {
    throw new TypeError(
      `selectBackend: preferred must be a non-empty array of backend names, got ${JSON.stringify(preferred)}`,
    );
  }
  const rejected: Record<string, string> = {};
  for (const name of preferred) {
    if (tf.findBackendFactory(name) === null && tf.findBackend(name) === null) {
      rejected[name] =
        `not registered (import @tensorflow/tfjs-backend-${name} to make it available)`;
      continue;
    }
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return { backend: name, rejected };
      }
      rejected[name] = 'registered but failed to initialise (tf.setBackend returned false)';
    } catch (e) {
      rejected[name] = `failed to initialise: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  throw new Error(
    `selectBackend: no backend of ${JSON.stringify(preferred)} could start: ${Object.entries(
      rejected,
    )
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}`,
  );
}
