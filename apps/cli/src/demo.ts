import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import { meanVisibleValues } from '@kernel-attention/performer';
import { createRng } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import type { DemoOptions } from './args.js';

export interface DemoRow {
  length: number;
  relativeError: number;
  /** Relative error of predicting mean(v) for every query. */
  baselineError: number;
  exactMs: number;
  favorMs: number;
  speedup: number;
}

function gaussian(shape: number[], rng: ReturnType<typeof createRng>, scale: number): tf.Tensor4D {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = scale * rng.normal();
  return tf.tensor4d(data, shape as [number, number, number, number]);
}

function medianMs(runs: number, f: () => tf.Tensor): { ms: number; last: Float32Array } {
  const times: number[] = [];
  let last = new Float32Array();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const out = f();
    last = Float32Array.from(out.dataSync()); // forces the computation to finish
    times.push(performance.now() - t0);
    out.dispose();
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, last };
}

/** Real attention inputs: q, k, v [1, heads, L, d] for a length L (see textInputs in main.ts). */
export type InputSource = (L: number) => { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D };

/**
 * Runs the comparison for every length, calling `progress` before each measurement. `text` gives
 * the inputs when o.inputs is 'text'.
 */
export function runDemo(
  o: DemoOptions,
  progress: (done: number, total: number, what: string) => void = () => {},
  text?: InputSource,
): DemoRow[] {
  if (o.inputs === 'text' && !text) throw new Error('runDemo: text inputs need an InputSource');
  const featureMap = softmaxKernelFeatures(o.headDim, o.features, { seed: o.seed });
  const rows: DemoRow[] = [];
  const total = o.lengths.length * 2;
  try {
    o.lengths.forEach((L, i) => {
      const rng = createRng(o.seed).fold(L);
      const shape = [o.batch, o.heads, L, o.headDim];
      const { q, k, v } =
        o.inputs === 'text'
          ? text!(L)
          : {
              q: gaussian(shape, rng, o.scale),
              k: gaussian(shape, rng, o.scale),
              v: gaussian(shape, rng, 1),
            };
      progress(2 * i, total, `exact attention, L=${L}`);
      softmaxAttention(q, k, v, { causal: o.causal }).dispose(); // warm-up
      const exact = medianMs(o.runs, () => softmaxAttention(q, k, v, { causal: o.causal }));
      progress(2 * i + 1, total, `FAVOR+, L=${L}`);
      favorAttention(q, k, v, { featureMap, causal: o.causal }).dispose();
      const favor = medianMs(o.runs, () =>
        favorAttention(q, k, v, { featureMap, causal: o.causal }),
      );
      const baseline = tf.tidy(() => Float32Array.from(meanVisibleValues(v, o.causal).dataSync()));
      rows.push({
        length: L,
        relativeError: relativeError(favor.last, exact.last),
        baselineError: relativeError(baseline, exact.last),
        exactMs: exact.ms,
        favorMs: favor.ms,
        speedup: exact.ms / favor.ms,
      });
      tf.dispose([q, k, v]);
    });
  } finally {
    featureMap.dispose();
  }
  progress(total, total, 'done');
  return rows;
}

function relativeError(approx: Float32Array, exact: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let j = 0; j < exact.length; j++) {
    diff += (approx[j]! - exact[j]!) ** 2;
    norm += exact[j]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

export function formatTable(o: DemoOptions, rows: DemoRow[]): string {
  const inputs =
    o.inputs === 'text'
      ? `real attention: layer ${o.layer} of the pretrained fortunes Performer on held-out text`
      : `q, k ~ N(0, ${o.scale}²)`;
  const head = `FAVOR+ vs exact softmax attention — ${o.causal ? 'causal' : 'bidirectional'}, backend ${o.backend}, batch ${o.batch}, ${o.heads} heads, d = ${o.headDim}, m = ${o.features}, ${inputs}, seed ${o.seed}`;
  const lines = [
    head,
    '',
    '      L   rel. error   mean(v) error   exact (ms)   FAVOR+ (ms)   speed-up',
    ' ------   ----------   -------------   ----------   -----------   --------',
  ];
  for (const r of rows) {
    lines.push(
      `${String(r.length).padStart(7)}   ${r.relativeError.toFixed(4).padStart(10)}   ${r.baselineError.toFixed(4).padStart(13)}   ${r.exactMs.toFixed(1).padStart(10)}   ${r.favorMs.toFixed(1).padStart(11)}   ${`${r.speedup.toFixed(2)}×`.padStart(8)}`,
    );
  }
  lines.push(
    '',
    'rel. error = ‖FAVOR+ − exact‖ / ‖exact‖ over all outputs; mean(v) error: the same for predicting',
    'the (running, if causal) mean of v for every query; times are medians.',
  );
  return lines.join('\n');
}
