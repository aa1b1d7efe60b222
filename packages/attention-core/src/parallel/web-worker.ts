// Web Worker side of createAttentionPool in a browser (parallel-browser.ts): the first message
// picks the backend (and where tfjs-wasm finds its .wasm files), then each request is answered
// with FAVOR+ on the groups it carries.
import * as tf from '@tensorflow/tfjs-core';
import type { WebWorkerInit } from './browser.js';
import { answerPoolRequest, type PoolRequest } from './protocol.js';

interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
}
const scope = globalThis as unknown as WorkerScope;

async function start({ init }: WebWorkerInit): Promise<void> {
  if (init.backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (init.wasmPaths !== undefined) wasm.setWasmPaths(init.wasmPaths);
  } else {
    await import('@tensorflow/tfjs-backend-cpu');
  }
  if (!(await tf.setBackend(init.backend)) || tf.getBackend() !== init.backend) {
    throw new Error(`the ${init.backend} backend did not start`);
  }
  await tf.ready();
}

scope.onmessage = (first: MessageEvent<WebWorkerInit>) => {
  scope.onmessage = null;
  start(first.data).then(
    () => {
      scope.onmessage = (e: MessageEvent<PoolRequest>) => {
        const res = answerPoolRequest(e.data);
        scope.postMessage(res, res.out ? [res.out.buffer as ArrayBuffer] : []);
      };
      scope.postMessage({ ready: true });
    },
    (e: unknown) => scope.postMessage({ error: String((e as Error)?.message ?? e) }),
  );
};
