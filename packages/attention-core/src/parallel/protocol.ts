// The part of createAttentionPool shared by its Node (worker_threads) and browser (Web Worker)
// forms: the messages, the worker-side computation, and the main-side split of (batch, head)
// groups between the calling thread and the workers.
import {
  type ExpFeatureSpec,
  type FeatureMap,
  hyperbolicSoftmax,
  positiveSoftmax,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { favorAttention } from '../ops/favor/favor-attention.js';
import { validateQkv } from '../tensor/validate.js';

/** @internal a request to a pool worker */
export interface PoolRequest {
  id: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  groups: number;
  length: number;
  dim: number;
  valueDim: number;
  featureMap: ExpFeatureSpec;
  causal: boolean;
}

/** @internal a pool worker's reply */
export interface PoolResponse {
  id: number;
  out?: Float32Array;
  error?: string;
}

export interface AttentionPoolOptions {
  /** Workers besides the calling thread (default 1: two cores in use). */
  workers?: number;
  /** tfjs backend of each worker: 'wasm' (default) or 'cpu'. */
  backend?: 'wasm' | 'cpu';
}

export interface PoolFavorOptions {
  /**
   * The feature map, as favorAttention takes it: a `positiveSoftmax` or `hyperbolicSoftmax` map
   * of `@kernel-attention/feature-maps` (e.g. from `softmaxKernelFeatures`). Each worker rebuilds
   * the same map from its options (projection, eps, stabilizer), so maps with code of their own
   * (`generalized`, your own FeatureMap) cannot cross to a worker thread and are refused.
   */
  featureMap: FeatureMap;
  causal?: boolean;
}

/** @internal The map's plain options, for the workers; refuses maps a worker cannot rebuild. */
export function transferableFeatureMap(fn: string, featureMap: unknown): ExpFeatureSpec {
  const spec = (featureMap as { spec?: () => ExpFeatureSpec } | null)?.spec;
  const name = (featureMap as { name?: unknown } | null)?.name;
  if (typeof spec !== 'function' || (name !== 'positiveSoftmax' && name !== 'hyperbolicSoftmax')) {
    throw new TypeError(
      `${fn}: featureMap must be a positiveSoftmax or hyperbolicSoftmax map of @kernel-attention/feature-maps (each worker rebuilds it from its options), got ${
        featureMap === null
          ? 'null'
          : typeof featureMap !== 'object'
            ? typeof featureMap
            : `a map named ${JSON.stringify(name ?? 'unnamed')}`
      }`,
    );
  }
  return spec.call(featureMap);
}

/** Rebuilds a map from its plain options (worker side, and the calling thread's share). */
function rebuild(spec: ExpFeatureSpec) {
  return spec.name === 'hyperbolicSoftmax' ? hyperbolicSoftmax(spec) : positiveSoftmax(spec);
}

export interface AttentionPool {
  readonly workers: number;
  /**
   * favorAttention with `featureMap` (positive or hyperbolic softmax features), the (batch, head) groups split
   * between the calling thread and the workers; the same result as the single-thread call on the
   * same backend. q, k [B, H, L, d], v [B, H, L, dv] (as many queries as keys) → [B, H, L, dv].
   *
   * @param q - queries [B, H, Lq, d]
   * @param k - keys [B, H, Lk, d]
   * @param v - values [B, H, Lk, dv]
   * @param opts - `{ featureMap, causal }`: a positiveSoftmax or hyperbolicSoftmax map
   */
  favorAttention(
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    opts: PoolFavorOptions,
  ): Promise<tf.Tensor4D>;
  close(): Promise<void>;
}

/** @internal checks the pool options; returns the worker count and backend */
export function poolOptions(fn: string, opts: AttentionPoolOptions): [number, 'wasm' | 'cpu'] {
  const count = opts.workers ?? 1;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`${fn}: workers must be a positive integer, got ${String(opts.workers)}`);
  }
  const backend = opts.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'cpu') {
    throw new RangeError(`${fn}: backend must be 'wasm' or 'cpu', got ${JSON.stringify(backend)}`);
  }
  return [count, backend];
}

/** FAVOR+ on `groups` (batch, head) groups of flat rows, as a tensor [1, groups, L, dv]. */
function favorOnGroups(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  shape: { groups: number; length: number; dim: number; valueDim: number },
  o: { featureMap: ExpFeatureSpec; causal: boolean },
): tf.Tensor4D {
  const { groups: n, length: L, dim: d, valueDim: dv } = shape;
  // the tidy returns the tensor: returning a typed array would make tfjs walk all its entries
  return tf.tidy(() => {
    const phi = rebuild(o.featureMap);
    const r = favorAttention(
      tf.tensor4d(q, [1, n, L, d]),
      tf.tensor4d(k, [1, n, L, d]),
      tf.tensor4d(v, [1, n, L, dv]),
      { featureMap: phi, causal: o.causal },
    );
    phi.dispose();
    return r;
  });
}

/**
 * @internal Worker side: answers one request. The output is a copy with its own buffer (dataSync
 * may view the wasm heap, which must not be transferred).
 */
export function answerPoolRequest(msg: PoolRequest): PoolResponse {
  try {
    const o = favorOnGroups(msg.q, msg.k, msg.v, msg, msg);
    const out = Float32Array.from(o.dataSync() as Float32Array);
    o.dispose();
    return { id: msg.id, out };
  } catch (e) {
    return { id: msg.id, error: String((e as Error)?.stack ?? e) };
  }
}

/** @internal what the main side needs of one worker, in Node or in a browser */
export interface PoolTransport {
  /** Sends a request (transferring its buffers) and resolves with the reply. */
  send(req: PoolRequest): Promise<PoolResponse>;
  terminate(): Promise<void> | void;
}

/** @internal the main side of a pool over started workers */
export function poolOver(fn: string, workers: PoolTransport[]): AttentionPool {
  let nextId = 0;
  return {
    workers: workers.length,
    async favorAttention(q, k, v, o) {
      const f = 'AttentionPool.favorAttention';
      if (o === null || typeof o !== 'object') {
        throw new TypeError(
          `${f}: options { featureMap, causal } are required, got ${o === null ? 'null' : typeof o}`,
        );
      }
      const featureMap = transferableFeatureMap(f, o.featureMap);
      const causal = o.causal ?? false;
      const s = validateQkv(f, q, k, v, { causal });
      if (s.queryLength !== s.keyLength) {
        throw new RangeError(
          `${f}: needs as many queries as keys, got ${s.queryLength} and ${s.keyLength}`,
        );
      }
      const G = s.batch * s.heads;
      const L = s.queryLength;
      const [d, dv] = [s.dim, s.valueDim];
      const per = Math.ceil(G / Math.min(G, workers.length + 1));
      // async reads: a GPU backend on the page cannot read synchronously in every browser
      const [qd, kd, vd] = (await Promise.all([q.data(), k.data(), v.data()])) as Float32Array[];
      const opts = { featureMap, causal };
      const pending: Promise<Float32Array>[] = [];
      for (let g0 = per, i = 0; g0 < G; g0 += per, i++) {
        const g1 = Math.min(G, g0 + per);
        const req: PoolRequest = {
          id: nextId++,
          q: qd!.slice(g0 * L * d, g1 * L * d),
          k: kd!.slice(g0 * L * d, g1 * L * d),
          v: vd!.slice(g0 * L * dv, g1 * L * dv),
          groups: g1 - g0,
          length: L,
          dim: d,
          valueDim: dv,
          ...opts,
        };
        pending.push(
          workers[i]!.send(req).then((res) => {
            if (res.error !== undefined) throw new Error(`${fn}: a worker failed: ${res.error}`);
            return res.out!;
          }),
        );
      }
      // meanwhile the calling thread takes the first share
      const n = Math.min(G, per);
      const own = favorOnGroups(
        qd!.slice(0, n * L * d),
        kd!.slice(0, n * L * d),
        vd!.slice(0, n * L * dv),
        { groups: n, length: L, dim: d, valueDim: dv },
        opts,
      );
      const all = new Float32Array(G * L * dv);
      all.set((await own.data()) as Float32Array, 0);
      own.dispose();
      let at = n * L * dv;
      for (const r of await Promise.all(pending)) {
        all.set(r, at);
        at += r.length;
      }
      return tf.tensor4d(all, [s.batch, s.heads, L, dv]);
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** @internal pairs replies with requests by id over a message port */
export function replyRouter(): {
  expect(id: number): Promise<PoolResponse>;
  deliver(res: PoolResponse): void;
  fail(e: unknown): void;
} {
  const waiting = new Map<number, { resolve(r: PoolResponse): void; reject(e: unknown): void }>();
  return {
    expect: (id) => new Promise((resolve, reject) => waiting.set(id, { resolve, reject })),
    deliver(res) {
      const w = waiting.get(res.id);
      waiting.delete(res.id);
      w?.resolve(res);
    },
    fail(e) {
      for (const w of waiting.values()) w.reject(e);
      waiting.clear();
    },
  };
}

/** @internal the buffers a request transfers */
export const transferables = (req: PoolRequest): ArrayBuffer[] =>
  [req.q.buffer, req.k.buffer, req.v.buffer] as ArrayBuffer[];
