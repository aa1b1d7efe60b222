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
  const fn = 'runFittedFavor';
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
  const { q, k, v, mask } = inputs;
  for (const [name, x] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
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
  const [B, H, L, d] = q.shape as [number, number, number, number];
  const G = B * H;
  const prefix = (x: tf.Tensor, P: number, axis: number) =>
    tf.slice(
      x,
      x.shape.map(() => 0),
      x.shape.map((s, i) => (i === axis ? P : s)),
    );

  /** The general form's tensors, reshaped to the graph's inputs [B, H, …]. */
  const asInputs = (p: FittedParameters) =>
    tf.tidy(() => {
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
  /** The map fitted to these queries and keys (padded keys zeroed and left out, as core does). */
  const fitted = (qq: tf.Tensor, kk: tf.Tensor, mm: tf.Tensor | undefined) =>
    tf.tidy(() => {
      const Lk = kk.shape[2]!;
      const kg = tf.reshape(kk, [G, Lk, d]);
      let keep: tf.Tensor | null = null;
      let k0 = kg;
      if (mm !== undefined) {
        const open = tf.reshape(tf.cast(tf.greater(mm, 0), 'float32'), [B, 1, Lk, 1]);
        keep = tf.reshape(tf.tile(open, [1, H, 1, 1]), [G, Lk, 1]);
        k0 = tf.where(tf.cast(tf.broadcastTo(keep, kg.shape), 'bool'), kg, tf.zerosLike(kg));
      }
      const map = featureMap.prepare!(tf.reshape(qq, [G, -1, d]), k0, keep);
      try {
        return asInputs(fittedParameters(map));
      } finally {
        map.dispose?.();
      }
    });
  const unfitted = () => asInputs(fittedParameters(featureMap, G));
  const run = async (
    params: ReturnType<typeof asInputs>,
    qq: tf.Tensor,
    kk: tf.Tensor,
    vv: tf.Tensor,
    mm?: tf.Tensor,
  ) => {
    try {
      return await attention.run({ q: qq, k: kk, v: vv, ...(mm ? { mask: mm } : {}), ...params });
    } finally {
      tf.dispose(Object.values(params));
    }
  };

  if (!attention.causal) return run(fitted(q, k, mask), q, k, v, mask);
  const P = Math.min(L, fitLength);
  if (P >= L) return run(unfitted(), q, k, v, mask);
  const heads = [q, k, v].map((x) => prefix(x, P, 2));
  const maskHead = mask === undefined ? undefined : prefix(mask, P, 1);
  try {
    const early = await run(unfitted(), heads[0]!, heads[1]!, heads[2]!, maskHead);
    const late = await run(fitted(heads[0]!, heads[1]!, maskHead), q, k, v, mask);
    // rows 0..P−1 from the unfitted run, P..L−1 from the fitted one, per (batch, head)
    const dv = late.dims[3]!;
    const out = late.data.slice();
    for (let g = 0; g < G; g++)
      out.set(early.data.subarray(g * P * dv, (g + 1) * P * dv), g * L * dv);
    return { data: out, dims: late.dims };
  } finally {
    tf.dispose([...heads, ...(maskHead ? [maskHead] : [])]);
  }
}
