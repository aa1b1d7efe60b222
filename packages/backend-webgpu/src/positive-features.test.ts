// The fused WebGPU feature kernel against the composite features (WebGPU in Node).
import { runFusedFeaturesSuite } from '@kernel-attention/core/testing/vitest';
import { positiveFeaturesConfig } from './index.js';

runFusedFeaturesSuite(positiveFeaturesConfig);
