// Worker side of createAttentionPool (parallel.ts): its own tfjs backend, FAVOR+ on the groups it
// is sent, the result sent back as a transferred Float32Array.
import { parentPort, workerData } from 'node:worker_threads';
import { positiveSoftmax } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { favorAttention } from './favor-attention.js';
import type { PoolRequest, PoolResponse } from './parallel.js';

const backend = (workerData as { backend: string }).backend;
if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
else await import('@tensorflow/tfjs-backend-cpu');
tf.env().set('IS_TEST', true); // no "install tfjs-node" banner from the cpu backend
if (!(await tf.setBackend(backend)) || tf.getBackend() !== backend) {
  throw new Error(`createAttentionPool: a worker could not start the ${backend} backend`);
}
await tf.ready();

parentPort!.on('message', (msg: PoolRequest) => {
  try {
    const { groups, length, dim, valueDim } = msg;
    // the tidy returns the tensor: returning a typed array would make tfjs walk all its entries
    const o = tf.tidy(() => {
      const q = tf.tensor4d(msg.q, [1, groups, length, dim]);
      const k = tf.tensor4d(msg.k, [1, groups, length, dim]);
      const v = tf.tensor4d(msg.v, [1, groups, length, valueDim]);
      const phi = positiveSoftmax({ projection: msg.projection, eps: msg.eps });
      const r = favorAttention(q, k, v, { featureMap: phi, causal: msg.causal });
      phi.dispose();
      return r;
    });
    // a copy with its own buffer: dataSync may view the wasm heap, which must not be transferred
    const out = Float32Array.from(o.dataSync() as Float32Array);
    o.dispose();
    const res: PoolResponse = { id: msg.id, out };
    parentPort!.postMessage(res, [out.buffer as ArrayBuffer]);
  } catch (e) {
    const res: PoolResponse = { id: msg.id, error: String((e as Error)?.stack ?? e) };
    parentPort!.postMessage(res);
  }
});
parentPort!.postMessage({ ready: true });
