/**
 * The playground's computation, shared by the page (Playground.vue) and the Node side of the
 * end-to-end tests (which recompute the numbers the page shows). Inputs come from our own PRNG,
 * so a seed gives the same q, k, v and the same random features in Node and in any browser.
 */
import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import {
  denseExponentialSoftmax,
  type FeatureMap,
  generalized,
  hyperbolicSoftmax,
  optimizedPositiveSoftmax,
  positiveSoftmax,
  trigSoftmax,
} from '@kernel-attention/feature-maps';
import { createRng, gaussianIid, gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import type { PlaygroundParams } from './playground-params.js';

export * from './playground-params.js';

/** Gaussian entries σ·N(0, 1) from our PRNG. */
function gaussians(n: number, seed: number, sigma: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => sigma * rng.normal());
}

/** q, k [1, heads, L, d] with entries N(0, scale²), v with N(0, 1), all from `seed`. */
export function playgroundInputs(p: PlaygroundParams, heads = 1) {
  const n = heads * p.L * p.d;
  const shape: [number, number, number, number] = [1, heads, p.L, p.d];
  return {
    q: tf.tensor4d(gaussians(n, p.seed * 3 + 1, p.scale), shape),
    k: tf.tensor4d(gaussians(n, p.seed * 3 + 2, p.scale), shape),
    v: tf.tensor4d(gaussians(n, p.seed * 3 + 3, 1), shape),
  };
}

/** The feature map the parameters name, on a projection drawn from `seed` (IID or orthogonal). */
export function playgroundFeatureMap(p: PlaygroundParams): FeatureMap & { dispose(): void } {
  const projection = p.orthogonal
    ? gaussianOrthogonal(p.m, p.d, { seed: p.seed })
    : gaussianIid(p.m, p.d, { seed: p.seed });
  switch (p.featureMap) {
    case 'hyperbolic':
      return hyperbolicSoftmax({ projection, eps: 0 });
    case 'trig':
      return trigSoftmax({ projection });
    case 'oprf':
      return optimizedPositiveSoftmax({ projection });
    case 'saderf':
      return denseExponentialSoftmax({ variant: 'saderf', projection });
    case 'relu':
    case 'elu+1':
      return generalized({ projection, fn: p.featureMap });
    default:
      return positiveSoftmax({ projection, eps: 0 });
  }
}

export interface PlaygroundResult {
  /** Exact attention matrix softmax(QKᵀ/√d) (masked when causal), row-major L×L. */
  exact: Float32Array;
  /** The matrix FAVOR+ implies: φ(q_i)·φ(k_j) normalised over the visible keys. */
  approx: Float32Array;
  /** ‖out_FAVOR − out_exact‖_F / ‖out_exact‖_F for the attention output. */
  outputError: number;
  /** ‖Â − A‖_F / ‖A‖_F for the attention matrices. */
  matrixError: number;
  /** The trivial baseline: ‖mean(v) − out_exact‖_F / ‖out_exact‖_F. */
  meanBaselineError: number;
}

const frobRatio = (a: tf.Tensor, b: tf.Tensor) =>
  tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.norm(b)));

/** One head: the two attention matrices and the relative errors, on the active backend. */
export async function runPlayground(p: PlaygroundParams): Promise<PlaygroundResult> {
  const { q, k, v } = playgroundInputs(p);
  const phi = playgroundFeatureMap(p);
  try {
    const t = tf.tidy(() => {
      const approxOut = favorAttention(q, k, v, {
        featureMap: phi,
        causal: p.causal,
        shrinkage: p.shrinkage && !p.causal,
      });
      const exactOut = softmaxAttention(q, k, v, { causal: p.causal });
      const [q2, k2] = [tf.reshape(q, [1, p.L, p.d]), tf.reshape(k, [1, p.L, p.d])];
      const scores = tf.div(tf.matMul(q2, k2, false, true), Math.sqrt(p.d));
      const visible = p.causal
        ? tf.linalg.bandPart(tf.ones([p.L, p.L]), -1, 0)
        : tf.ones([p.L, p.L]);
      const e = tf.mul(tf.exp(tf.sub(scores, tf.max(scores, -1, true))), visible);
      const exact = tf.div(e, tf.sum(e, -1, true));
      // a data-dependent map is fitted to this call as favorAttention fits it (bidirectional; a
      // causal call of L ≤ causalFitLength uses the unfitted map)
      const map = !p.causal && phi.prepare ? phi.prepare(q2, k2, null) : phi;
      const raw = tf.mul(
        tf.matMul(map.features(q2, 'query'), map.features(k2, 'key'), false, true),
        visible,
      );
      if (map !== phi) map.dispose?.();
      // trig features can give negative or zero rows: guard the normaliser's sign-preserving size
      const z = tf.sum(raw, -1, true);
      const safe = tf.where(tf.greater(tf.abs(z), 1e-30), z, tf.onesLike(z));
      const approx = tf.div(raw, safe);
      const meanV = tf.broadcastTo(tf.mean(v, 2, true), v.shape);
      return {
        exact: tf.reshape(exact, [p.L * p.L]),
        approx: tf.reshape(approx, [p.L * p.L]),
        outputError: frobRatio(approxOut, exactOut),
        matrixError: frobRatio(approx, exact),
        meanBaselineError: frobRatio(meanV, exactOut),
      };
    });
    const read = async (x: tf.Tensor) => (await x.data()) as Float32Array;
    const out: PlaygroundResult = {
      exact: await read(t.exact),
      approx: await read(t.approx),
      outputError: (await read(t.outputError))[0]!,
      matrixError: (await read(t.matrixError))[0]!,
      meanBaselineError: (await read(t.meanBaselineError))[0]!,
    };
    tf.dispose(Object.values(t));
    return out;
  } finally {
    tf.dispose([q, k, v]);
    phi.dispose();
  }
}

/** Median time (ms) of FAVOR+ on [1, 4, L, d] on the active backend (after one warm-up). */
export async function timeFavor(p: PlaygroundParams, runs = 3): Promise<number> {
  const { q, k, v } = playgroundInputs(p, 4);
  const phi = playgroundFeatureMap(p);
  const once = async () => {
    const t0 = performance.now();
    const out = favorAttention(q, k, v, { featureMap: phi, causal: p.causal });
    const s = tf.sum(out);
    await s.data();
    tf.dispose([out, s]);
    return performance.now() - t0;
  };
  try {
    await once();
    const times: number[] = [];
    for (let r = 0; r < runs; r++) times.push(await once());
    return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
  } finally {
    tf.dispose([q, k, v]);
    phi.dispose();
  }
}
