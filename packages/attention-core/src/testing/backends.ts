import { backendsWith } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';

/** Backends the Node test suites know how to start. */
export type NodeBackendName = 'cpu' | 'wasm' | 'webgpu' | 'webgl';

/**
 * WebGPU in Node: the `webgpu` package (Dawn) provides navigator.gpu. It needs a Vulkan driver:
 * Chromium's SwiftShader (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json, and
 * LD_LIBRARY_PATH=/usr/lib/chromium for its libvulkan). tfjs-backend-webgpu looks at
 * navigator.gpu when it is imported, so this runs before that import.
 */
async function provideNodeWebGpu(): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return;
  const specifier = 'webgpu'; // a variable keeps bundlers away from this Node-only package
  const { create, globals } = (await import(/* @vite-ignore */ specifier)) as {
    create: (flags: string[]) => unknown;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, globals);
  g.navigator ??= {};
  Object.defineProperty(g.navigator, 'gpu', { value: create([]), configurable: true });
}

/**
 * Imports and activates a tfjs backend by name (cpu, wasm or webgpu in Node). Throws, saying
 * why, when the backend cannot start — a backend that cannot run fails the suite, never skips it.
 *
 * @param name - 'cpu', 'wasm', 'webgl' or 'webgpu'
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
    case 'webgpu':
      if (typeof window === 'undefined') await provideNodeWebGpu(); // browsers have navigator.gpu
      await import('@tensorflow/tfjs-backend-webgpu');
      break;
    case 'webgl':
      await import('@tensorflow/tfjs-backend-webgl');
      break;
    default:
      throw new Error(
        `useBackend: unknown backend ${JSON.stringify(name)} (known: cpu, wasm, webgpu, webgl)`,
      );
  }
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) {
    const hint =
      name === 'webgpu'
        ? " (WebGPU in Node needs a Vulkan driver: install Debian's chromium and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium)"
        : '';
    throw new Error(
      `useBackend: tfjs could not start the ${name} backend (tf.setBackend returned ${ok})${hint}`,
    );
  }
}

/** The backend the current test project asked for (KA_BACKEND), default cpu. */
export function requestedBackend(): string {
  return (typeof process !== 'undefined' && process.env.KA_BACKEND) || 'cpu';
}

/** Backends whose tensors can be read synchronously (the CPU-side fits and the FFT need it). */
export const SYNC_READ_BACKENDS: readonly string[] = backendsWith('syncReads');

/**
 * Runs `fn` in a tfjs memory scope that, unlike tf.tidy, may await (asynchronous reads are the
 * only ones GPU backends offer in Node): every tensor made inside is disposed at the end.
 *
 * @param fn - the work; every tensor it leaves behind is disposed
 */
export async function scoped(fn: () => Promise<void>): Promise<void> {
  tf.engine().startScope();
  try {
    await fn();
  } finally {
    tf.engine().endScope();
  }
}
