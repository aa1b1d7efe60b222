// The shared parity suite, unchanged, with the fused WebGPU kernels registered (WebGPU in Node),
// its property suite at the full count (the fused kernels are this backend's fast path).
import { requestedBackend, runParitySuite } from '@kernel-attention/core/testing/vitest';
import { register } from './index.js';

register();
runParitySuite({ backend: requestedBackend() });
