import * as tf from '@tensorflow/tfjs-core';

/** Backends the Node test suites know how to start. */
export type NodeBackendName = 'cpu' | 'wasm';

/**
 * Imports and activates a tfjs backend by name (cpu or wasm in Node). Throws, saying why,
 * when the backend cannot start — a backend that cannot run fails the suite, never skips it.
 */
export async function useBackend(name: string): Promise<void> {
  tf.env().set('IS_TEST', true); // silences tfjs-backend-cpu's "install tfjs-node" banner in Node
  switch (name) {
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      break;
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      break;
    default:
      throw new Error(
        `useBackend: unknown backend ${JSON.stringify(name)} (known in Node: cpu, wasm)`,
      );
  }
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) {
    throw new Error(
      `useBackend: tfjs could not start the ${name} backend (tf.setBackend returned ${ok})`,
    );
  }
}

/** The backend the current test project asked for (KA_BACKEND), default cpu. */
export function requestedBackend(): string {
  return (typeof process !== 'undefined' && process.env.KA_BACKEND) || 'cpu';
}
