// The shared parity suite, unchanged, with the fused WebGL kernels registered (headless Chromium).
// The property suite runs its full count on webgl in core:browser:webgl (the composite path);
// with the fused feature kernel registered it runs REPEATED_BACKEND_RUNS cases per op.
import { REPEATED_BACKEND_RUNS, runParitySuite } from '@kernel-attention/core/testing/vitest';
import { inject } from 'vitest';
import { register } from './index.js';

register();
runParitySuite({ backend: inject('backend'), propertyRuns: REPEATED_BACKEND_RUNS });
