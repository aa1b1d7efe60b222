import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { positiveSoftmax } from '@kernel-attention/feature-maps';
import type { Matrix } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { favorAttention } from './favor-attention.js';
import { validateQkv } from './validate.js';

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
  projection: Matrix;
  eps: number;
  causal: boolean;
}

/** @internal a pool worker's reply */
export interface PoolResponse {
  id: number;
  out?: Float32Array;
  error?: string;
}

export interface AttentionPoolOptions {
  /** Worker threads besides the calling thread (default 1: two cores in use). */
  workers?: number;
  /** tfjs backend of each worker: 'wasm' (default) or 'cpu'. */
  backend?: 'wasm' | 'cpu';
}

export interface PoolFavorOptions {
  /** FAVOR+ projection W [m, d] (positive softmax features, the same in every thread). */
  projection: Matrix;
  /** Feature eps (default 1e-6, as positiveSoftmax's). */
  eps?: number;
  causal?: boolean;
}

export interface AttentionPool {
  readonly workers: number;
  /**
   * favorAttention with positive softmax features on `projection`, the (batch, head) groups split
   * between the calling thread and the workers; the same result as the single-thread call.
   * q, k [B, H, L, d], v [B, H, L, dv] (as many queries as keys) → [B, H, L, dv].
   */
  favorAttention(
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    opts: PoolFavorOptions,
  ): Promise<tf.Tensor4D>;
  close(): Promise<void>;
}

/**
 * From TypeScript sources (development, tests, benches) the worker registers tsx itself and uses
 * the workspace's source condition; the published .js worker needs neither.
 */
function startWorker(url: URL, backend: string): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: { backend } });
  const tsx = join(
    dirname(createRequire(url).resolve('tsx/package.json')),
    'dist/esm/api/index.mjs',
  );
  const code = `import(${JSON.stringify(pathToFileURL(tsx).href)}).then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(code, {
    eval: true,
    workerData: { backend },
    execArgv: ['--conditions=@kernel-attention/source'],
  });
}

/**
 * Node only (`@kernel-attention/core/parallel`): worker threads, each with its own tfjs backend,
 * sharing FAVOR+ attention with the calling thread by (batch, head) groups. tfjs-wasm runs on one
 * thread in Node, so this is how the other cores get used.
 *
 * @example
 * ```ts
 * import { createAttentionPool } from '@kernel-attention/core/parallel';
 * const pool = await createAttentionPool({ workers: 1 });
 * const projection = gaussianOrthogonal(256, 64, { seed: 0 });
 * const out = await pool.favorAttention(q, k, v, { projection, causal: true });
 * await pool.close();
 * ```
 */
export async function createAttentionPool(opts: AttentionPoolOptions = {}): Promise<AttentionPool> {
  const fn = 'createAttentionPool';
  const count = opts.workers ?? 1;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`${fn}: workers must be a positive integer, got ${String(opts.workers)}`);
  }
  const backend = opts.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'cpu') {
    throw new RangeError(`${fn}: backend must be 'wasm' or 'cpu', got ${JSON.stringify(backend)}`);
  }
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const url = new URL(`./parallel-worker${ext}`, import.meta.url);
  const workers = await Promise.all(
    Array.from({ length: count }, async () => {
      const w = startWorker(url, backend);
      await new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
      });
      return w;
    }),
  );
  let nextId = 0;
  const call = (w: Worker, req: PoolRequest) =>
    new Promise<Float32Array>((resolve, reject) => {
      const onMessage = (res: PoolResponse) => {
        if (res.id !== req.id) return;
        w.off('message', onMessage);
        if (res.error !== undefined) reject(new Error(`${fn}: a worker failed: ${res.error}`));
        else resolve(res.out!);
      };
      w.on('message', onMessage);
      w.postMessage(req, [req.q.buffer, req.k.buffer, req.v.buffer] as ArrayBuffer[]);
    });
  return {
    workers: count,
    async favorAttention(q, k, v, o) {
      const f = 'AttentionPool.favorAttention';
      const causal = o?.causal ?? false;
      const s = validateQkv(f, q, k, v, { causal });
      if (s.queryLength !== s.keyLength) {
        throw new RangeError(
          `${f}: needs as many queries as keys, got ${s.queryLength} and ${s.keyLength}`,
        );
      }
      const G = s.batch * s.heads;
      const L = s.queryLength;
      const [d, dv] = [s.dim, s.valueDim];
      const per = Math.ceil(G / Math.min(G, count + 1));
      const [qd, kd, vd] = [q.dataSync(), k.dataSync(), v.dataSync()] as Float32Array[];
      const eps = o.eps ?? 1e-6;
      const pending: Promise<Float32Array>[] = [];
      for (let g0 = per, i = 0; g0 < G; g0 += per, i++) {
        const g1 = Math.min(G, g0 + per);
        pending.push(
          call(workers[i]!, {
            id: nextId++,
            q: qd!.slice(g0 * L * d, g1 * L * d),
            k: kd!.slice(g0 * L * d, g1 * L * d),
            v: vd!.slice(g0 * L * dv, g1 * L * dv),
            groups: g1 - g0,
            length: L,
            dim: d,
            valueDim: dv,
            projection: o.projection,
            eps,
            causal,
          }),
        );
      }
      // meanwhile the calling thread takes the first share (a tensor out of the tidy: returning a
      // typed array from tf.tidy would make tfjs walk all its entries)
      const n = Math.min(G, per);
      const own = tf.tidy(() => {
        const part = (x: Float32Array, w: number) =>
          tf.tensor4d(x.slice(0, n * L * w), [1, n, L, w]);
        const phi = positiveSoftmax({ projection: o.projection, eps });
        const r = favorAttention(part(qd!, d), part(kd!, d), part(vd!, dv), {
          featureMap: phi,
          causal,
        });
        phi.dispose();
        return r;
      });
      const mine = own.dataSync() as Float32Array;
      const all = new Float32Array(G * L * dv);
      all.set(mine, 0);
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
