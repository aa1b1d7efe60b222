// The fused WebGL feature kernel against the composite features (headless Chromium).
import { runFusedFeaturesSuite } from '@kernel-attention/core/testing/vitest';
import { positiveFeaturesConfig } from './index.js';

runFusedFeaturesSuite(positiveFeaturesConfig);
