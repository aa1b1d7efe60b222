/**
 * FAVOR+ on several cores: `createAttentionPool` splits the (batch, head) groups between the
 * calling thread and worker threads (Node) or Web Workers (browsers).
 *
 * @module @kernel-attention/core/parallel
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  type AttentionPool,
  type AttentionPoolOptions,
  type PoolResponse,
  type PoolTransport,
  poolOptions,
  poolOver,
  replyRouter,
  transferables,
} from './protocol.js';

export type {
  AttentionPool,
  AttentionPoolOptions,
  PoolFavorOptions,
  PoolRequest,
  PoolResponse,
} from './protocol.js';

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

async function nodeTransport(url: URL, backend: string): Promise<PoolTransport> {
  const w = startWorker(url, backend);
  await new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
  const router = replyRouter();
  w.on('message', (res: PoolResponse) => router.deliver(res));
  w.on('error', (e) => router.fail(e));
  return {
    send(req) {
      const reply = router.expect(req.id);
      w.postMessage(req, transferables(req));
      return reply;
    },
    async terminate() {
      await w.terminate();
    },
  };
}

/**
 * Node (`@kernel-attention/core/parallel`): worker threads, each with its own tfjs backend,
 * sharing FAVOR+ attention with the calling thread by (batch, head) groups. tfjs-wasm runs on one
 * thread in Node, so this is how the other cores get used. In a browser the same import resolves
 * to the Web Worker form (parallel-browser.ts), with the same API.
 *
 * @param opts - `{ workers, backend }`: worker threads besides this one (default 1) and their backend ('wasm' or 'cpu')
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { createAttentionPool } from '@kernel-attention/core/parallel';
 * import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
 * const pool = await createAttentionPool({ workers: 1 });
 * const featureMap = softmaxKernelFeatures(16, 64, { seed: 0 }); // d = 16, m = 64
 * const q = tf.randomNormal([1, 4, 128, 16], 0, 0.5);
 * const [k, v] = [q, q];
 * const out = await pool.favorAttention(q, k, v, { featureMap, causal: true });
 * await pool.close();
 * ```
 */
export async function createAttentionPool(opts: AttentionPoolOptions = {}): Promise<AttentionPool> {
  const fn = 'createAttentionPool';
  const [count, backend] = poolOptions(fn, opts);
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const url = new URL(`./worker${ext}`, import.meta.url);
  const workers = await Promise.all(
    Array.from({ length: count }, () => nodeTransport(url, backend)),
  );
  return poolOver(fn, workers);
}
