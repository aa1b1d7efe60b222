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
import { encodeDocuments, meanVisibleValues, type PerformerLM } from '@kernel-attention/performer';
import { createRng, gaussianIid, gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import type { PlaygroundParams } from './playground-params.js';

export * from './playground-params.js';

/** Gaussian entries σ·N(0, 1) from our PRNG. */
function gaussians(n: number, seed: number, sigma: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => sigma * rng.normal());
}

/** The pretrained model and its held-out text, for real q, k, v ('text' inputs). */
export interface PlaygroundModel {
  model: PerformerLM;
  /** The held-out documents as one token stream (charTokenizer ids). */
  stream: Int32Array;
}

export function playgroundModel(model: PerformerLM, documents: string[]): PlaygroundModel {
  return { model, stream: encodeDocuments(documents) };
}

/** Where the text window of `seed` starts in the held-out stream (the same in Node and browsers). */
export function textOffset(source: PlaygroundModel, L: number, seed: number): number {
  const room = Math.max(1, source.stream.length - L - 1);
  return (seed * 7919) % room;
}

/**
 * q, k, v [1, heads, L, dimHead] of the pretrained model's layer p.layer on the held-out text window
 * of p.seed: head p.head (and the heads after it when heads > 1, wrapping around).
 */
export function textInputs(source: PlaygroundModel, p: PlaygroundParams, heads = 1) {
  const { model, stream } = source;
  const L = Math.min(p.L, model.config.maxSeqLen);
  const o = textOffset(source, L, p.seed);
  const layers = model.attentionInputs([Array.from(stream.subarray(o, o + L))]);
  const H = model.config.heads;
  const pick = Array.from({ length: heads }, (_, i) => (p.head + i) % H);
  const idx = tf.tensor1d(pick, 'int32');
  const out = tf.tidy(() => {
    const l = layers[Math.min(p.layer, layers.length - 1)]!;
    return {
      q: tf.gather(l.q, idx, 1) as tf.Tensor4D,
      k: tf.gather(l.k, idx, 1) as tf.Tensor4D,
      v: tf.gather(l.v, idx, 1) as tf.Tensor4D,
    };
  });
  idx.dispose();
  for (const l of layers) tf.dispose([l.q, l.k, l.v]);
  return out;
}

/** The parameters as they run: text inputs fix d to the model's head size and cap L. */
export function effectiveParams(p: PlaygroundParams, source?: PlaygroundModel): PlaygroundParams {
  if (p.inputs !== 'text' || !source) return p;
  const c = source.model.config;
  return { ...p, d: c.dimHead, L: Math.min(p.L, c.maxSeqLen) };
}

function inputsOf(p: PlaygroundParams, source: PlaygroundModel | undefined, heads = 1) {
  if (p.inputs === 'text') {
    if (!source) throw new Error('text inputs need the pretrained model (still loading?)');
    return textInputs(source, p, heads);
  }
  return playgroundInputs(p, heads);
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
export async function runPlayground(
  params: PlaygroundParams,
  source?: PlaygroundModel,
): Promise<PlaygroundResult> {
  const p = effectiveParams(params, source);
  const { q, k, v } = inputsOf(p, source);
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
      const meanV = meanVisibleValues(v, p.causal); // the trivial estimator
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
  const { q, k, v } = playgroundInputs({ ...p, inputs: 'gaussian' }, 4);
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

/** Generation timings of one run: tokens per second after the prompt. */
export interface GenerationTiming {
  tokens: number[];
  tokensPerSecond: number;
}

/**
 * Greedy continuation with the recurrent state (`generate`: constant work per token) or by
 * recomputing the whole prefix for every new token (what a softmax Transformer without a KV cache
 * does): the same tokens, different costs. `onToken` sees each new token.
 */
export async function timeGeneration(
  model: PerformerLM,
  prompt: number[],
  maxNewTokens: number,
  how: 'recurrent' | 'recompute',
  onToken?: (token: number) => void | Promise<void>,
): Promise<GenerationTiming> {
  const t0 = performance.now();
  let tokens: number[];
  if (how === 'recurrent') {
    tokens = await model.generate(prompt, { maxNewTokens, onToken: (t) => void onToken?.(t) });
  } else {
    tokens = [...prompt];
    const limit = Math.min(model.config.maxSeqLen, prompt.length + maxNewTokens);
    while (tokens.length < limit) {
      const logits = model.logits([tokens]);
      const last = tf.tidy(() =>
        tf.argMax(tf.slice(logits, [0, tokens.length - 1, 0], [1, 1, -1]), -1),
      );
      const next = (await last.data())[0]!;
      tf.dispose([logits, last]);
      tokens.push(next);
      await onToken?.(next);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { tokens, tokensPerSecond: (tokens.length - prompt.length) / seconds };
}
