export { predictedFavorMse } from './accuracy.js';
export { requestedBackend, useBackend } from './backends.js';
export { browserWasmPaths, setBrowserWasmPaths } from './browser-wasm-paths.js';
export { runFusedFeaturesSuite } from './fused-features-suite.js';
export {
  expectGradientsMatchFiniteDifferences,
  expectNoLeak,
  type KnownGap,
  type ParitySuiteOptions,
  rand4,
  randomArray,
  runParitySuite,
  TOLERANCES,
} from './parity-suite.js';
export {
  type PropertySuiteOptions,
  propertyRuns,
  REPEATED_BACKEND_RUNS,
  runPropertySuite,
} from './property-suite.js';
export {
  type Array4,
  type CombinerReferenceOptions,
  combinerPlan,
  maxRelativeError,
  naiveCausalRecurrence,
  naiveCombinerAttention,
  naiveFavorAttention,
  naiveLinearAttention,
  naivePositiveFeatures,
  naiveRelationAwareAttention,
  naiveSoftmaxAttention,
  type ReferenceOptions,
} from './reference.js';
