// The shared parity suite, unchanged, with the fused WebGPU kernels registered (WebGPU in Node).
import { requestedBackend, runParitySuite } from '@kernel-attention/core/testing';
import { register } from './index.js';

register();
runParitySuite({ backend: requestedBackend() });
