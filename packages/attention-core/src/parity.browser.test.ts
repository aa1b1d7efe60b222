// The shared parity suite in headless Chromium, on the backend the browser project provides.
import { inject } from 'vitest';
import { runParitySuite } from './testing/index.js';

runParitySuite({ backend: inject('backend') });
