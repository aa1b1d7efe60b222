/**
 * `@kernel-attention/core/testing`: the naive Float64 references (oracles) that every backend is
 * checked against, seeded inputs, the paper's predicted FAVOR+ error and backend start-up helpers.
 * No test-runner dependency: use these from any runner or script. The vitest suites that drive
 * them are in `@kernel-attention/core/testing/vitest`.
 *
 * @module @kernel-attention/core/testing
 */
export { predictedFavorMse } from './accuracy.js';
export { requestedBackend, SYNC_READ_BACKENDS, scoped, useBackend } from './backends.js';
export { browserWasmPaths, setBrowserWasmPaths } from './browser-wasm-paths.js';
export { rand4, randomArray, TOLERANCES } from './inputs.js';
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
