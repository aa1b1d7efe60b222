import { encodeDocuments, loadHeldOutDocuments, loadPretrained } from '@kernel-attention/performer';
import * as tf from '@tensorflow/tfjs-core';
import type { InputSource } from './demo.js';

/**
 * Real attention inputs: the q, k, v of one layer of the pretrained fortunes Performer on its
 * held-out text, [1, 4, L, 32]. Lengths beyond the model's context (1024) join consecutive
 * windows of the text along L (each window run on its own: real q, k, v statistics, positions
 * restarting at each window).
 */
export async function textInputs(layer: number): Promise<{ inputs: InputSource; dispose(): void }> {
  const model = await loadPretrained('fortunes-performer');
  const stream = encodeDocuments(await loadHeldOutDocuments('fortunes-performer'));
  const context = model.config.maxSeqLen;
  const inputs: InputSource = (L) => {
    if (L > stream.length) {
      throw new Error(`L = ${L} is longer than the held-out text (${stream.length} characters)`);
    }
    const parts: { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
    for (let start = 0; start < L; start += context) {
      const n = Math.min(context, L - start);
      const layers = model.attentionInputs([Array.from(stream.subarray(start, start + n))]);
      layers.forEach((l, i) => {
        if (i === layer) parts.push(l);
        else tf.dispose([l.q, l.k, l.v]);
      });
    }
    const join = (key: 'q' | 'k' | 'v') =>
      tf.concat(
        parts.map((p) => p[key]),
        2,
      ) as tf.Tensor4D;
    const out = { q: join('q'), k: join('k'), v: join('v') };
    for (const p of parts) tf.dispose([p.q, p.k, p.v]);
    return out;
  };
  return { inputs, dispose: () => model.dispose() };
}
