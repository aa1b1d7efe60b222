// vitest browser-mode setupFiles entry: registers tfjs's gradients and starts the backend this
// browser project provides (inject('backend')): webgl, webgpu or wasm in headless Chromium.
import '@tensorflow/tfjs';
import { inject } from 'vitest';
import { useBackend } from './backends.js';

const backend = inject('backend');
if (backend === 'wasm') {
  // the browser build fetches its .wasm files: serve them through Vite
  const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
  const simd = (await import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url'))
    .default;
  const plain = (await import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url'))
    .default;
  const threaded = (
    await import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url')
  ).default;
  setWasmPaths({
    'tfjs-backend-wasm.wasm': plain,
    'tfjs-backend-wasm-simd.wasm': simd,
    'tfjs-backend-wasm-threaded-simd.wasm': threaded,
  });
}
await useBackend(backend);
