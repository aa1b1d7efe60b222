// The shared parity suite and the fused-feature checks with the fused WebGPU kernels registered,
// in headless Chromium (the Node project runs the same on Dawn).
import { runFusedFeaturesSuite, runParitySuite } from '@kernel-attention/core/testing';
import { inject } from 'vitest';
import { positiveFeaturesConfig, register } from './index.js';

register();
runParitySuite({ backend: inject('backend') });
runFusedFeaturesSuite(positiveFeaturesConfig);
