// The shared parity suite and the fused-feature checks with the fused WebGPU kernels registered,
// in headless Chromium (the Node project runs the same on Dawn, with the property suite's full
// count; here it runs REPEATED_BACKEND_RUNS cases per op).
import {
  REPEATED_BACKEND_RUNS,
  runFusedFeaturesSuite,
  runParitySuite,
} from '@kernel-attention/core/testing/vitest';
import { inject } from 'vitest';
import { positiveFeaturesConfig, register } from './index.js';

register();
runParitySuite({ backend: inject('backend'), propertyRuns: REPEATED_BACKEND_RUNS });
runFusedFeaturesSuite(positiveFeaturesConfig);
