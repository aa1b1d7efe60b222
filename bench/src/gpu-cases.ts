/**
 * Fused against composite on one GPU backend, the same cases in Node (webgpu-node.ts) and in
 * Chromium (browser/main.ts): each op is timed with every fused kernel of the backend package
 * unregistered (core's composite tfjs-ops path), then registered. Batch 1, 8 heads, d = dv = 64,
 * m = 128. Cases whose kernel the backend does not register are left out.
 */
import { favorAttention, linearAttention } from '@kernel-attention/core';
import { positiveSoftmax } from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { medianMs } from './timing.js';

export interface GpuCaseResult {
  op: string;
  length: number;
  compositeMs: number;
  /** null where the backend registers no fused kernels (wasm): only the composite path is timed. */
  fusedMs: number | null;
  speedup:
    | number
    | null /** Feature cases: peak bytes tfjs allocates during the call (tf.profile), composite and fused. */;
  compositePeakBytes?: number;
  fusedPeakBytes?: number;
}

export interface GpuCaseOptions {
  /** The backend package's kernel configs (unregistered for the composite timings). */
  configs: tf.KernelConfig[];
  lengths: number[];
  runs?: number;
  log?: (line: string) => void;
}

export const SHAPE = { batch: 1, heads: 8, dim: 64, features: 128, valueDim: 64 };

/**
 * Runs f and waits for it by reading back one number (its sum): reading the whole output would
 * time the download (large on WebGL), not the op.
 */
async function timeOnce(f: () => tf.Tensor): Promise<number> {
  const t0 = performance.now();
  const out = f();
  const sum = tf.sum(out);
  await sum.data();
  const ms = performance.now() - t0;
  tf.dispose([out, sum]);
  return ms;
}

/** Peak bytes allocated while f runs (tf.profile). */
async function peakBytes(f: () => tf.Tensor): Promise<number> {
  const info = await tf.profile(f);
  (info.result as tf.Tensor).dispose();
  return info.peakBytes;
}

async function median(f: () => tf.Tensor, runs: number): Promise<number> {
  await timeOnce(f); // warm-up (shader compilation)
  const times: number[] = [];
  for (let r = 0; r < runs; r++) times.push(await timeOnce(f));
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

export async function runGpuCases(opts: GpuCaseOptions): Promise<GpuCaseResult[]> {
  const { heads: H, dim: d, features: m, valueDim: dv } = SHAPE;
  const runs = opts.runs ?? 3;
  const backend = tf.getBackend();
  const registered = (name: string) => opts.configs.some((c) => c.kernelName === name);
  const setFused = (on: boolean) => {
    for (const c of opts.configs) {
      const has = tf.getKernel(c.kernelName, backend) !== undefined;
      if (on && !has) tf.registerKernel(c);
      if (!on && has) tf.unregisterKernel(c.kernelName, backend);
    }
  };
  const phi = positiveSoftmax({ projection: gaussianOrthogonal(m, d, { seed: 0 }) });
  const results: GpuCaseResult[] = [];
  for (const L of opts.lengths) {
    const q = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 1);
    const k = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 2);
    const v = tf.randomNormal([1, H, L, dv], 0, 1, 'float32', 3);
    const qf = tf.abs(tf.randomNormal([1, H, L, m], 0, 1, 'float32', 4));
    const kf = tf.abs(tf.randomNormal([1, H, L, m], 0, 1, 'float32', 5));
    const cases: [string, string[], () => tf.Tensor][] = [
      [
        'causal-linear-attention',
        ['KaCausalLinearAttention'],
        () => linearAttention(qf, kf, v, { causal: true }),
      ],
      [
        'bidirectional-linear-attention',
        ['KaBidirectionalLinearAttention'],
        () => linearAttention(qf, kf, v),
      ],
      ['positive-features-key', ['KaPositiveFeatures'], () => phi.features(k, 'key')],
      ['positive-features-query', ['KaPositiveFeatures'], () => phi.features(q, 'query')],
      ['favor-causal', [], () => favorAttention(q, k, v, { featureMap: phi, causal: true })],
      ['favor-bidirectional', [], () => favorAttention(q, k, v, { featureMap: phi })],
    ];
    for (const [op, kernels, call] of cases) {
      if (!kernels.every(registered)) continue;
      setFused(false);
      const compositeMs = await median(call, runs);
      if (opts.configs.length === 0) {
        results.push({ op, length: L, compositeMs, fusedMs: null, speedup: null });
        opts.log?.(`${backend} ${op} L=${L}: ${compositeMs.toFixed(0)} ms`);
        continue;
      }
      const compositePeak = op.startsWith('positive-features') ? await peakBytes(call) : undefined;
      setFused(true);
      const fusedMs = await median(call, runs);
      const fusedPeak = op.startsWith('positive-features') ? await peakBytes(call) : undefined;
      results.push({
        op,
        length: L,
        compositeMs,
        fusedMs,
        speedup: compositeMs / fusedMs,
        ...(compositePeak === undefined
          ? {}
          : { compositePeakBytes: compositePeak, fusedPeakBytes: fusedPeak }),
      });
      opts.log?.(
        `${backend} ${op} L=${L}: composite ${compositeMs.toFixed(0)} ms, fused ${fusedMs.toFixed(0)} ms, ${(compositeMs / fusedMs).toFixed(2)}×`,
      );
    }
    tf.dispose([q, k, v, qf, kf]);
  }
  setFused(true);
  phi.dispose();
  return results;
}

export interface PoolCaseResult {
  op: 'favor-causal' | 'favor-bidirectional';
  length: number;
  oneThreadMs: number;
  /** The page and one Web Worker (createAttentionPool, workers: 1), each on tfjs-wasm. */
  twoThreadsMs: number;
  speedup: number;
}

/**
 * Browser only: FAVOR+ on the page alone against the page plus one Web Worker sharing the
 * (batch, head) groups (`@kernel-attention/core/parallel`'s browser form), positive softmax
 * features, the SHAPE above; medians of 3.
 */
export async function runPoolCases(opts: {
  lengths: number[];
  log?: (line: string) => void;
}): Promise<PoolCaseResult[]> {
  const { createAttentionPool } = await import('@kernel-attention/core/parallel');
  const { browserWasmPaths } = await import('@kernel-attention/core/testing');
  const { heads: H, dim: d, features: m, valueDim: dv } = SHAPE;
  // the browser form's options (tsc resolves the Node types of this import; Vite the browser module)
  const poolOpts = { workers: 1, wasmPaths: await browserWasmPaths() };
  const pool = await createAttentionPool(poolOpts as Parameters<typeof createAttentionPool>[0]);
  const projection = gaussianOrthogonal(m, d, { seed: 0 });
  const phi = positiveSoftmax({ projection });
  const results: PoolCaseResult[] = [];
  // one warm-up call, then the median of 3, each waited for to its data and freed
  const medianAsync = async (f: () => Promise<tf.Tensor>) => {
    const step = async () => {
      const out = await f();
      await out.data();
      out.dispose();
    };
    await step();
    return medianMs(step, 3);
  };
  for (const L of opts.lengths) {
    const q = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 1);
    const k = tf.randomNormal([1, H, L, d], 0, 0.5, 'float32', 2);
    const v = tf.randomNormal([1, H, L, dv], 0, 1, 'float32', 3);
    for (const causal of [true, false]) {
      const op = causal ? 'favor-causal' : 'favor-bidirectional';
      const oneThreadMs = await medianAsync(async () =>
        favorAttention(q, k, v, { featureMap: phi, causal }),
      );
      const twoThreadsMs = await medianAsync(() =>
        pool.favorAttention(q, k, v, { featureMap: phi, causal }),
      );
      results.push({
        op,
        length: L,
        oneThreadMs,
        twoThreadsMs,
        speedup: oneThreadMs / twoThreadsMs,
      });
      opts.log?.(
        `wasm ${op} L=${L}: page alone ${oneThreadMs.toFixed(0)} ms, page + Web Worker ${twoThreadsMs.toFixed(0)} ms, ${(oneThreadMs / twoThreadsMs).toFixed(2)}×`,
      );
    }
    tf.dispose([q, k, v]);
  }
  phi.dispose();
  await pool.close();
  return results;
}
