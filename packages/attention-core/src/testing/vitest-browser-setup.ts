// vitest browser-mode setupFiles entry: registers tfjs's gradients and starts the backend this
// browser project provides (inject('backend')): webgl, webgpu or wasm in headless Chromium.
import '@tensorflow/tfjs';
import { inject } from 'vitest';
import { useBackend } from './backends.js';
import { setBrowserWasmPaths } from './browser-wasm-paths.js';

const backend = inject('backend');
if (backend === 'wasm') await setBrowserWasmPaths();
await useBackend(backend);
