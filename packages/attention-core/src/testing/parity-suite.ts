import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { TOLERANCES } from './inputs.js';
import { badInputParity } from './parity/bad-input.js';
import { bayesianAttentionParity } from './parity/bayesian-attention.js';
import { causalStateParity } from './parity/causal-state.js';
import { combinerAttentionParity } from './parity/combiner-attention.js';
import { favorAttentionParity } from './parity/favor-attention.js';
import { fittedMapsParity } from './parity/fitted-maps.js';
import { gatedAttentionParity } from './parity/gated-attention.js';
import type { ParityContext } from './parity/helpers.js';
import { linearAttentionParity } from './parity/linear-attention.js';
import { persistentMemoryParity } from './parity/persistent-memory.js';
import { relationAwareAttentionParity } from './parity/relation-aware-attention.js';
import { rpeFavorAttentionParity } from './parity/rpe-favor-attention.js';
import { softmaxAttentionParity } from './parity/softmax-attention.js';
import { runPropertySuite } from './property-suite.js';
import { runRegressionSuite } from './regression-suite.js';

export { expectGradientsMatchFiniteDifferences, expectNoLeak } from './parity/helpers.js';

/** A test that is known to fail on one backend, recorded with its reason (never silently skipped). */
export interface KnownGap {
  test: string;
  backend: string;
  reason: string;
}

export interface ParitySuiteOptions {
  /** The backend the suite expects to be active (it checks). */
  backend: string;
  tolerance?: number;
  knownGaps?: readonly KnownGap[];
  /** Cases per op of the property suite (default: KA_FUZZ_RUNS, else 200). */
  propertyRuns?: number;
}

/**
 * The shared parity suite: every backend runs the same cases against the naive references —
 * bidirectional and causal linear attention, chunk-size invariance, the closed form, masks, odd
 * lengths, length 1, exact softmax attention, FAVOR+ end to end, streaming, gradients, extremes,
 * NaN propagation, leaks and bad input. Call it inside a vitest file with the backend active.
 *
 * @example
 * ```ts no-run: defines vitest suites (top level of a test file); every backend's parity.test.ts runs it
 * import { runParitySuite } from '@kernel-attention/core/testing/vitest';
 * runParitySuite({ backend: 'wasm' });
 * ```
 */
export function runParitySuite(opts: ParitySuiteOptions): void {
  const { backend } = opts;
  const tol = opts.tolerance ?? TOLERANCES[backend] ?? 1e-3;
  const gaps = new Map(
    (opts.knownGaps ?? []).filter((g) => g.backend === backend).map((g) => [g.test, g.reason]),
  );
  const check: ParityContext['check'] = (name, fn) => {
    const reason = gaps.get(name);
    if (reason !== undefined) it.fails(`${name} [known gap on ${backend}: ${reason}]`, fn);
    else it(name, fn);
  };

  const context: ParityContext = { backend, tol, check };
  describe(`parity suite on ${backend}`, () => {
    it('runs on the requested backend', () => {
      expect(tf.getBackend()).toBe(backend);
    });

    runRegressionSuite({ backend, tolerance: tol });
    runPropertySuite({ backend, tolerance: tol, runs: opts.propertyRuns });

    linearAttentionParity(context);
    softmaxAttentionParity(context);
    favorAttentionParity(context);
    causalStateParity(context);
    rpeFavorAttentionParity(context);
    combinerAttentionParity(context);
    persistentMemoryParity(context);
    gatedAttentionParity(context);
    relationAwareAttentionParity(context);
    bayesianAttentionParity(context);
    fittedMapsParity(context);
    badInputParity(context);
  });
}
