// onnxruntime-web in headless Chromium: the graphs on its WebAssembly provider (threaded: the test
// server sends COOP/COEP, so the page is cross-origin isolated) and on its WebGPU provider
// (SwiftShader here), against core's ops computed by tfjs in the same page.
import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import { maxRelativeError, rand4 } from '@kernel-attention/core/testing';
import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { PerformerLM } from '@kernel-attention/performer';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import * as ortWeb from 'onnxruntime-web';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url';
import { describe, expect, it } from 'vitest';
import { OnnxPerformerLM } from './generate.js';
import { OnnxAttention } from './runner.js';
import { loadOnnxRuntimeWeb } from './web.js';

const wasmPaths = { wasm: wasmUrl };

describe('onnxruntime-web in the browser', () => {
  it('threads when the page is cross-origin isolated, and says why', async () => {
    expect(globalThis.crossOriginIsolated).toBe(true);
    const web = await loadOnnxRuntimeWeb({ module: ortWeb, wasmPaths, executionProvider: 'wasm' });
    expect(web.executionProvider).toBe('wasm');
    expect(web.threads).toBe(Math.min(navigator.hardwareConcurrency, 4));
    expect(web.reason).toMatch(
      /wasm: asked for; \d wasm threads?: the page is cross-origin isolated/,
    );
    expect(web.sessionOptions).toEqual({ executionProviders: ['wasm'] });
    await expect(loadOnnxRuntimeWeb({ module: {}, wasmPaths })).rejects.toThrow(
      /module must be the onnxruntime-web module/,
    );
    await expect(loadOnnxRuntimeWeb({ module: ortWeb, threads: 0 })).rejects.toThrow(
      /threads must be an integer from 1 to 64, got 0/,
    );
  });

  for (const provider of ['wasm', 'webgpu'] as const) {
    it.each([false, true])(
      `${provider}: FAVOR+ (causal %s) and exact attention equal core's ops`,
      async (causal) => {
        const web = await loadOnnxRuntimeWeb({
          module: ortWeb,
          wasmPaths,
          executionProvider: provider,
        });
        expect(web.executionProvider).toBe(provider);
        const [B, H, L, d, m] = [1, 2, 37, 8, 16];
        const q = rand4([B, H, L, d], 1, 0.8);
        const k = rand4([B, H, L, d], 2, 0.8);
        const v = rand4([B, H, L, 4], 3);
        const w = gaussianOrthogonal(m, d, { seed: 4 });
        const favor = await OnnxAttention.favor(
          { dim: d, numProjections: m, eps: 1e-4, causal, chunkSize: 8 },
          web,
        );
        const out = await favor.run({
          q,
          k,
          v,
          projection: { data: Float32Array.from(w.data), dims: [m, d] },
        });
        await favor.release();
        const phi = positiveSoftmax({ projection: w, eps: 1e-4 });
        const ours = favorAttention(q, k, v, { featureMap: phi, causal });
        const tolerance = provider === 'wasm' ? 1e-5 : 1e-4;
        expect(
          maxRelativeError(Array.from(out.data), Array.from(await ours.data()), 1e-4),
        ).toBeLessThan(tolerance);
        const exact = await OnnxAttention.exact({ dim: d, causal }, web);
        const outExact = await exact.run({ q, k, v });
        await exact.release();
        const oursExact = softmaxAttention(q, k, v, { causal });
        expect(
          maxRelativeError(Array.from(outExact.data), Array.from(await oursExact.data()), 1e-4),
        ).toBeLessThan(tolerance);
        phi.dispose();
        tf.dispose([q, k, v, ours, oursExact]);
      },
    );
  }

  it('a PerformerLM generates in the page the text PerformerLM.generate gives', async () => {
    const web = await loadOnnxRuntimeWeb({ module: ortWeb, wasmPaths, executionProvider: 'wasm' });
    const model = PerformerLM.create(
      { numTokens: 19, maxSeqLen: 64, dim: 32, depth: 2, heads: 2, nbFeatures: 16 },
      { seed: 2 },
    );
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    const lm = await OnnxPerformerLM.create(model, web);
    const onnx = await lm.generate(prompt, { maxNewTokens: 12 });
    await lm.release();
    expect(onnx).toEqual(await model.generate(prompt, { maxNewTokens: 12 }));
    model.dispose();
  });
});
