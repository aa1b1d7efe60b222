/**
 * `pnpm bench:generate` (also run by `pnpm bench`): PerformerLM generation on the wasm backend in
 * Node — tokens per second with core's recurrent causal state (constant work per token) against
 * recomputing the whole prefix for every new token — and the same model exported to ONNX on
 * onnxruntime-node (@kernel-attention/onnx: the prompt in one prefill pass, then one step per token
 * on the recurrent state; one thread and two) — prompt 1024, 256 new tokens, greedy. Other
 * processes' CPU is recorded. Writes bench/results/generate-wasm-node.json.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { watchOtherCpu } from '@kernel-attention/cli/cpu';
import { useBackend } from '@kernel-attention/core/testing';
import { OnnxPerformerLM } from '@kernel-attention/onnx';
import { PerformerLM } from '@kernel-attention/performer';
import * as tf from '@tensorflow/tfjs-core';

await useBackend('wasm');
const quick = process.argv.includes('--quick');
const [promptLength, newTokens] = quick ? [128, 32] : [1024, 256];
const config = {
  numTokens: 256,
  maxSeqLen: promptLength + newTokens,
  dim: 128,
  depth: 2,
  heads: 4,
  nbFeatures: 64,
};
const model = PerformerLM.create(config, { seed: 0 });
const prompt = Array.from({ length: promptLength }, (_, i) => (i * 37 + 11) % 256);

const cpu = watchOtherCpu();
// recurrent: the prompt goes through the state token by token, then each new token is one step
let t0 = performance.now();
let promptDone = 0;
const generated = await model.generate(prompt, {
  maxNewTokens: newTokens,
  onToken: () => {
    if (promptDone === 0) promptDone = performance.now();
  },
});
const recurrentMs = performance.now() - promptDone;
const promptMs = promptDone - t0;

// recompute: a full forward over the sequence so far for every new token
t0 = performance.now();
const seq = [...prompt];
for (let n = 0; n < newTokens; n++) {
  const logits = model.logits([seq]);
  const last = tf.tidy(() =>
    tf.argMax(tf.reshape(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, -1]), [-1])),
  );
  seq.push((await last.data())[0]!);
  tf.dispose([logits, last]);
}
const recomputeMs = performance.now() - t0;

// ONNX Runtime: prefill, then steps; the same greedy tokens are expected
async function onOrt(threads: number) {
  const lm = await OnnxPerformerLM.create(model, {
    sessionOptions: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  await lm.generate(prompt.slice(0, 16), { maxNewTokens: 4 }); // warm-up
  const start = performance.now();
  let first = 0;
  const tokens = await lm.generate(prompt, {
    maxNewTokens: newTokens,
    onToken: () => {
      if (first === 0) first = performance.now();
    },
  });
  const end = performance.now();
  await lm.release();
  const diverge = tokens.findIndex((t, i) => t !== generated[i]);
  return {
    tokensPerSecond: newTokens / ((end - first) / 1000),
    prefillMs: first - start,
    firstDivergence: diverge < 0 ? null : diverge - promptLength,
  };
}
const ort1 = await onOrt(1);
const ort2 = await onOrt(2);
const { otherCores } = cpu.stop();
// an untrained model's logits are nearly tied, so float32 rounding (chunked sums vs the recurrent
// state) may flip a greedy choice: report where the two sequences first part, if they do
const diverge = generated.findIndex((t, i) => t !== seq[i]);
const out = {
  meta: {
    date: new Date().toISOString(),
    backend: 'wasm (Node, single thread)',
    model: config,
    promptLength,
    newTokens,
    note: "greedy decoding; tokens/s over the new tokens; the prompt pass (tfjs: token by token through the state; ORT: one prefill pass) is reported separately; otherCores = other processes' mean CPU during the run",
    ort: 'onnxruntime-node 1.30.0, the model exported by @kernel-attention/onnx',
  },
  results: {
    recurrentTokensPerSecond: newTokens / (recurrentMs / 1000),
    recomputeTokensPerSecond: newTokens / (recomputeMs / 1000),
    speedup: recomputeMs / recurrentMs,
    recurrentPromptMs: promptMs,
    firstDivergence: diverge < 0 ? null : diverge - promptLength,
    ortOneThread: ort1,
    ortTwoThreads: ort2,
    ortOneThreadSpeedup: ort1.tokensPerSecond / (newTokens / (recurrentMs / 1000)),
    otherCores,
  },
};
process.stderr.write(`${JSON.stringify(out.results)}\n`);
model.dispose();
const file = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'results',
  'generate-wasm-node.json',
);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
