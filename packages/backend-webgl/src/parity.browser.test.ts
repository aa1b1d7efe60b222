// The shared parity suite, unchanged, with the fused WebGL kernels registered (headless Chromium).
import { runParitySuite } from '@kernel-attention/core/testing';
import { inject } from 'vitest';
import { register } from './index.js';

register();
runParitySuite({ backend: inject('backend') });
