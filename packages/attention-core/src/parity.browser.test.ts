// The shared parity suite in headless Chromium, on the backend the browser project provides.
// The property suite runs its full count on webgl (whose only home is the browser); webgpu and
// wasm run it in full in Node (core:webgpu, core:wasm), so here at REPEATED_BACKEND_RUNS.
import { inject } from 'vitest';
import { REPEATED_BACKEND_RUNS, runParitySuite } from './testing/suites.js';

const backend = inject('backend');
runParitySuite({
  backend,
  propertyRuns: backend === 'webgl' ? undefined : REPEATED_BACKEND_RUNS,
});
