// Worker-thread side of createAttentionPool in Node (parallel.ts): its own tfjs backend, FAVOR+ on
// the groups it is sent, the result sent back as a transferred Float32Array.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { answerPoolRequest, type PoolRequest } from './protocol.js';

const backend = (workerData as { backend: string }).backend;
if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
else await import('@tensorflow/tfjs-backend-cpu');
tf.env().set('IS_TEST', true); // no "install tfjs-node" banner from the cpu backend
if (!(await tf.setBackend(backend)) || tf.getBackend() !== backend) {
  throw new Error(`createAttentionPool: a worker could not start the ${backend} backend`);
}
await tf.ready();

parentPort!.on('message', (msg: PoolRequest) => {
  const res = answerPoolRequest(msg);
  parentPort!.postMessage(res, res.out ? [res.out.buffer as ArrayBuffer] : []);
});
parentPort!.postMessage({ ready: true });
