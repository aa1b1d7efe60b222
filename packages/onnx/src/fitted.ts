/**
 * FAVOR with a data-dependent feature map (FAVOR++ / OPRF and the dense-exponential maps) on
 * ONNX Runtime: the fit runs in tfjs (the map's own `prepare`), the attention in a 'fitted' graph
 * that takes the fitted parameters as inputs — computed as core's favorAttention computes it.
 */
import {
  type FeatureMap,
  type FittedParameters,
  fittedParameters,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import type { OnnxAttention, TensorOutput } from './runner.js';

/** The tensors of one call (tfjs tensors: the fit runs in tfjs). */
export interface FittedFavorInputs {
  /** [B, H, Lq, d] */
  q: tf.Tensor;
  /** [B, H, Lk, d] */
  k: tf.Tensor;
  /** [B, H, Lk, dv] */
  v: tf.Tensor;
  /** [B, Lk]: 1 keep, 0 pad (graphs built with `mask: true` only). */
  mask?: tf.Tensor;
}

/** Default causalFitLength, as core's favorAttention. */
const DEFAULT_CAUSAL_FIT_LENGTH = 128;

/**
 * Runs a 'fitted' FAVOR graph (`OnnxAttention.favor({ featureMap: 'fitted', … })`) with a
 * data-dependent map, fitting it to the call as core's favorAttention does: bidirectional, on all
 * queries and unpadded keys; causal, on the first P = min(L, causalFitLength) positions only —
 * queries before P use the unfitted map over the keys before them, queries from P on the fitted
 * one — so no output depends on a later position. The result equals favorAttention's with the
 * same map.
 *
 * @param attention - a session of a 'fitted' FAVOR graph
 * @param featureMap - optimizedPositiveSoftmax(...) or denseExponentialSoftmax(...)
 * @param inputs - `{ q, k, v, mask }` as tfjs tensors
 * @param opts - `{ causalFitLength }` (default 128, as favorAttention's)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { optimizedPositiveSoftmax } from '@kernel-attention/feature-maps';
 * import { OnnxAttention, runFittedFavor } from '@kernel-attention/onnx';
 * import { gaussianOrthogonal } from '@kernel-attention/random-features';
 *
 * const featureMap = optimizedPositiveSoftmax({ projection: gaussianOrthogonal(32, 16, { seed: 0 }) });
 * const attention = await OnnxAttention.favor({ dim: 16, numProjections: 32, featureMap: 'fitted' });
 * const q = tf.randomNormal([1, 2, 64, 16], 0, 1, 'float32', 1);
 * const out = await runFittedFavor(attention, featureMap, { q, k: q, v: q }); // out.dims [1, 2, 64, 16]
 * await attention.release();
 * featureMap.dispose();
 * q.dispose();
 * ```
 */
export async function runFittedFavor(
  attention: OnnxAttention,
  featureMap: FeatureMap,
  inputs: FittedFavorInputs,
  opts: { causalFitLength?: number } = {},
): Promise<TensorOutput> {
  const fitLength = checkFittedCall('runFittedFavor', attention, featureMap, inputs, opts);
  const { q, k, v, mask } = inputs;
  const call = new FittedCall(attention, featureMap, q.shape as [number, number, number, number]);
  if (!attention.causal) return call.run(call.fitted(q, k, mask), q, k, v, mask);
  const L = q.shape[2]!;
  const P = Math.min(L, fitLength);
  if (P >= L) return call.run(call.unfitted(), q, k, v, mask);
  const heads = [q, k, v].map((x) => prefix(x, P, 2));
  const maskHead = mask === undefined ? undefined : prefix(mask, P, 1);
  try {
    const early = await call.run(call.unfitted(), heads[0]!, heads[1]!, heads[2]!, maskHead);
    const late = await call.run(call.fitted(heads[0]!, heads[1]!, maskHead), q, k, v, mask);
    // rows 0..P−1 from the unfitted run, P..L−1 from the fitted one, per (batch, head)
    const dv = late.dims[3]!;
    const out = late.data.slice();
    for (let g = 0; g < call.groups; g++) {
      out.set(early.data.subarray(g * P * dv, (g + 1) * P * dv), g * L * dv);
    }
    return { data: out, dims: late.dims };
  } finally {
    tf.dispose([...heads, ...(maskHead ? [maskHead] : [])]);
  }
}

/** x restricted to its first P entries along `axis`. */
const prefix = (x: tf.Tensor, P: number, axis: number) =>
  tf.slice(
    x,
    x.shape.map(() => 0),
    x.shape.map((s, i) => (i === axis ? P : s)),
  );

/** Checks the call; returns causalFitLength. */
function checkFittedCall(
  fn: string,
  attention: OnnxAttention,
  featureMap: FeatureMap,
  inputs: FittedFavorInputs,
  opts: { causalFitLength?: number },
): number {
  if (attention === null || typeof attention !== 'object' || attention.fitted !== true) {
    throw new TypeError(
      `${fn}: attention must be an OnnxAttention of a 'fitted' FAVOR graph (OnnxAttention.favor({ featureMap: 'fitted', … }))`,
    );
  }
  if (typeof featureMap?.prepare !== 'function') {
    throw new TypeError(
      `${fn}: featureMap must be a data-dependent map with prepare (optimizedPositiveSoftmax or denseExponentialSoftmax), got ${featureMap === null ? 'null' : typeof featureMap === 'object' ? featureMap.name : typeof featureMap}`,
    );
  }
  if (inputs === null || typeof inputs !== 'object') {
    throw new TypeError(`${fn}: inputs { q, k, v, mask } are required, got ${String(inputs)}`);
  }
  for (const name of ['q', 'k', 'v'] as const) {
    const x = inputs[name];
    if (!(x instanceof tf.Tensor) || x.rank !== 4) {
      throw new TypeError(`${fn}: ${name} must be a 4-D tfjs tensor [B, H, L, d]`);
    }
  }
  const fitLength = opts?.causalFitLength ?? DEFAULT_CAUSAL_FIT_LENGTH;
  if (!Number.isInteger(fitLength) || fitLength < 1) {
    throw new RangeError(
      `${fn}: causalFitLength must be a positive integer, got ${String(fitLength)}`,
    );
  }
  return fitLength;
}

/** The graph's fitted-parameter inputs [B, H, …]. */
type FittedInputs = {
  projection: tf.Tensor;
  queryTransform: tf.Tensor;
  keyTransform: tf.Tensor;
  queryOffset: tf.Tensor;
  keyOffset: tf.Tensor;
};

/** One call's sizes, map and session: fits the map as favorAttention does and runs the graph. */
class FittedCall {
  readonly groups: number;

  constructor(
    private readonly attention: OnnxAttention,
    private readonly featureMap: FeatureMap,
    private readonly shape: [number, number, number, number],
  ) {
    this.groups = shape[0] * shape[1];
  }

  /** The general form's tensors, reshaped to the graph's inputs [B, H, …] (and freed). */
  private inputsOf(p: FittedParameters): FittedInputs {
    const [B, H, , d] = this.shape;
    return tf.tidy(() => {
      const m = p.projection.shape[1]!;
      const inputs = {
        projection: tf.reshape(p.projection, [B, H, m, d]),
        queryTransform: tf.reshape(p.queryTransform, [B, H, d, d]),
        keyTransform: tf.reshape(p.keyTransform, [B, H, d, d]),
        queryOffset: tf.reshape(p.queryOffset, [B, H, m]),
        keyOffset: tf.reshape(p.keyOffset, [B, H, m]),
      };
      tf.dispose([p.projection, p.queryTransform, p.keyTransform, p.queryOffset, p.keyOffset]);
      return inputs;
    });
  }

  /** The map fitted to these queries and keys (padded keys zeroed and left out, as core does). */
  fitted(q: tf.Tensor, k: tf.Tensor, mask: tf.Tensor | undefined): FittedInputs {
    const [B, H, , d] = this.shape;
    const G = this.groups;
    return tf.tidy(() => {
      const Lk = k.shape[2]!;
      const kg = tf.reshape(k, [G, Lk, d]);
      let keep: tf.Tensor | null = null;
      let k0 = kg;
      if (mask !== undefined) {
        const open = tf.reshape(tf.cast(tf.greater(mask, 0), 'float32'), [B, 1, Lk, 1]);
        keep = tf.reshape(tf.tile(open, [1, H, 1, 1]), [G, Lk, 1]);
        k0 = tf.where(tf.cast(tf.broadcastTo(keep, kg.shape), 'bool'), kg, tf.zerosLike(kg));
      }
      const map = this.featureMap.prepare!(tf.reshape(q, [G, -1, d]), k0, keep);
      try {
        return this.inputsOf(fittedParameters(map));
      } finally {
        map.dispose?.();
      }
    });
  }

  /** The unfitted map (FAVOR+) in the same form. */
  unfitted(): FittedInputs {
    return this.inputsOf(fittedParameters(this.featureMap, this.groups));
  }

  /** Runs the graph on these parameters (freed after). */
  async run(
    params: FittedInputs,
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    mask?: tf.Tensor,
  ): Promise<TensorOutput> {
    try {
      return await this.attention.run({ q, k, v, ...(mask ? { mask } : {}), ...params });
    } finally {
      tf.dispose([
        params.projection,
        params.queryTransform,
        params.keyTransform,
        params.queryOffset,
        params.keyOffset,
      ]);
    }
  }
}
