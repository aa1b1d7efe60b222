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

export interface BrowserAttentionPoolOptions extends AttentionPoolOptions {
  /**
   * Where the workers' tfjs-backend-wasm finds its .wasm files (tfjs's `setWasmPaths` argument: a
   * URL prefix or one URL per file). Needed whenever the page's bundler moves them; pass what the
   * page itself gave `setWasmPaths`.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * Starts one worker running `@kernel-attention/core/parallel-web-worker` (default: a module
   * worker from the URL next to this file, the form bundlers such as Vite and webpack 5 detect).
   */
  createWorker?: () => Worker;
}

/** @internal the first message to a Web Worker */
export interface WebWorkerInit {
  init: { backend: 'wasm' | 'cpu'; wasmPaths?: string | Record<string, string> };
}

async function webTransport(
  fn: string,
  make: () => Worker,
  init: WebWorkerInit,
): Promise<PoolTransport> {
  const w = make();
  await new Promise<void>((resolve, reject) => {
    w.onmessage = (e: MessageEvent<{ ready?: boolean; error?: string }>) => {
      if (e.data.ready) resolve();
      else reject(new Error(`${fn}: a worker could not start: ${e.data.error}`));
    };
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`${fn}: a worker could not start: ${e.message || 'script error'}`));
    };
    w.postMessage(init);
  });
  const router = replyRouter();
  w.onmessage = (e: MessageEvent<PoolResponse>) => router.deliver(e.data);
  w.onerror = (e) => {
    e.preventDefault();
    router.fail(new Error(`${fn}: a worker failed: ${e.message}`));
  };
  return {
    send(req) {
      const reply = router.expect(req.id);
      w.postMessage(req, transferables(req));
      return reply;
    },
    terminate() {
      w.terminate();
    },
  };
}

/**
 * Browser form of `@kernel-attention/core/parallel` (the package's `browser` export condition):
 * Web Workers, each with its own tfjs backend (wasm by default), sharing FAVOR+ attention with the
 * calling thread by (batch, head) groups — the same API and results as the Node worker-thread
 * pool. The calling thread computes its share on its current backend.
 *
 * @example
 * ```ts no-run: needs a browser (Web Workers); parallel.browser.test.ts runs it in Chromium
 * import { createAttentionPool } from '@kernel-attention/core/parallel';
 * const pool = await createAttentionPool({ workers: navigator.hardwareConcurrency - 1 });
 * const out = await pool.favorAttention(q, k, v, { featureMap, causal: true });
 * await pool.close();
 * ```
 */
export async function createAttentionPool(
  opts: BrowserAttentionPoolOptions = {},
): Promise<AttentionPool> {
  const fn = 'createAttentionPool';
  const [count, backend] = poolOptions(fn, opts);
  const make =
    opts.createWorker ??
    (() => new Worker(new URL('./web-worker.js', import.meta.url), { type: 'module' }));
  const init: WebWorkerInit = { init: { backend, wasmPaths: opts.wasmPaths } };
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => webTransport(fn, make, init)),
  );
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    for (const s of started) if (s.status === 'fulfilled') s.value.terminate();
    throw (failed as PromiseRejectedResult).reason;
  }
  return poolOver(
    fn,
    started.map((s) => (s as PromiseFulfilledResult<PoolTransport>).value),
  );
}
