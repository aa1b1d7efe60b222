/**
 * `@kernel-attention/core/testing/vitest`: the shared suites that every backend runs (parity,
 * properties, fused features) and the vitest assertions they use. Needs `vitest` and `fast-check`
 * (optional peer dependencies, installed by whoever runs the suites); re-exports everything of
 * `@kernel-attention/core/testing`.
 */

export { runFusedFeaturesSuite } from './fused-features-suite.js';
export * from './index.js';
export {
  expectGradientsMatchFiniteDifferences,
  expectNoLeak,
  type KnownGap,
  type ParitySuiteOptions,
  runParitySuite,
} from './parity-suite.js';
export {
  type PropertySuiteOptions,
  propertyRuns,
  REPEATED_BACKEND_RUNS,
  runPropertySuite,
} from './property-suite.js';
