/**
 * Experiment 3: random-feature estimators on real attention — the q, k, v of every head of every
 * layer of the trained Transformer, on held-out text (test split). For each map and option, m and
 * direction: the relative output error ‖out − exact‖_F / ‖exact‖_F per head against exact softmax
 * attention, averaged over seeds, next to the mean(v) baseline (every query predicts the mean of the
 * values it may see). Writes bench/results/lm-fortunes/attention.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import {
  denseExponentialSoftmax,
  type FeatureMap,
  generalized,
  hyperbolicSoftmax,
  optimizedPositiveSoftmax,
  positiveSoftmax,
  trigSoftmax,
} from '@kernel-attention/feature-maps';
import { meanVisibleValues, PerformerLM, relativeErrorPerHead } from '@kernel-attention/performer';
import { gaussianIid, gaussianOrthogonal, type Matrix } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { CHECKPOINTS, windows, writeResults } from './common.js';

type MapFactory = (w: Matrix) => FeatureMap & { dispose?(): void };
/** name → factory; `causal: false` marks maps whose fit reads the whole sequence */
export const ESTIMATORS: Record<string, { make: MapFactory; shrinkage?: boolean; iid?: boolean }> =
  {
    positive: { make: (w) => positiveSoftmax({ projection: w, eps: 0 }) },
    'positive eps 1e-4': { make: (w) => positiveSoftmax({ projection: w, eps: 1e-4 }) },
    'positive IID': { make: (w) => positiveSoftmax({ projection: w, eps: 0 }), iid: true },
    'positive + shrinkage': {
      make: (w) => positiveSoftmax({ projection: w, eps: 0 }),
      shrinkage: true,
    },
    hyperbolic: { make: (w) => hyperbolicSoftmax({ projection: w, eps: 0 }) },
    'hyperbolic eps 1e-4': { make: (w) => hyperbolicSoftmax({ projection: w, eps: 1e-4 }) },
    'hyperbolic + shrinkage': {
      make: (w) => hyperbolicSoftmax({ projection: w, eps: 0 }),
      shrinkage: true,
    },
    trig: { make: (w) => trigSoftmax({ projection: w }) },
    OPRF: { make: (w) => optimizedPositiveSoftmax({ projection: w }) },
    'OPRF antithetic': {
      make: (w) => optimizedPositiveSoftmax({ projection: w, antithetic: true }),
    },
    SADERF: { make: (w) => denseExponentialSoftmax({ variant: 'saderf', projection: w }) },
    ADERF: { make: (w) => denseExponentialSoftmax({ variant: 'aderf', projection: w }) },
    SDERF: { make: (w) => denseExponentialSoftmax({ variant: 'sderf', projection: w }) },
    'SDERF antithetic': {
      make: (w) => denseExponentialSoftmax({ variant: 'sderf', projection: w, antithetic: true }),
    },
    // not an estimator of softmax: Performer-ReLU's kernel, for reference
    'ReLU (not softmax)': { make: (w) => generalized({ fn: 'relu', projection: w }) },
  };

const quick = process.env.KA_LM_QUICK === '1'; // a smoke run: one m, one seed
const MS = quick ? [256] : [64, 128, 256, 512];
const SEEDS = quick ? [0] : [0, 1, 2];
const LENGTH = 512;
const WINDOWS = 4;

interface HeadRow {
  layer: number;
  head: number;
  /** mean(v) baseline's error */
  baseline: number;
  /** exact attention's entropy in nats, mean over queries (uniform over L keys: ln L) */
  entropy: number;
  /**
   * mean |q̂|² and |k̂|² (x̂ = d^-1/4·x): positive features' relative variance grows like
   * exp(|q̂ + k̂|²) (Lemma 2 of the paper), so these say how hard the head is for FAVOR+
   */
  queryNorm2: number;
  keyNorm2: number;
}

function meanScaledNorm2(x: tf.Tensor4D): number[] {
  return tf.tidy(() =>
    Array.from(tf.div(tf.mean(tf.sum(tf.square(x), -1), [0, 2]), Math.sqrt(x.shape[3])).dataSync()),
  );
}

function entropyPerHead(q: tf.Tensor4D, k: tf.Tensor4D, causal: boolean): number[] {
  return tf.tidy(() => {
    const d = q.shape[3];
    let s = tf.div(tf.matMul(q, k, false, true), Math.sqrt(d));
    if (causal) {
      const L = q.shape[2];
      const mask = tf.linalg.bandPart(tf.ones([L, L]), -1, 0);
      s = tf.add(s, tf.mul(tf.sub(1, mask), -1e9));
    }
    const logp = tf.sub(s, tf.logSumExp(s, -1, true));
    const h = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)); // [B, H, L]
    return Array.from(tf.mean(h, [0, 2]).dataSync());
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

export async function attentionExperiment(source = 'transformer'): Promise<void> {
  const model = PerformerLM.fromSafetensors(
    readFileSync(join(CHECKPOINTS, `${source}.safetensors`)),
  );
  const data = windows('test', LENGTH, WINDOWS);
  const layers = model.attentionInputs(data.inputs);
  const { heads } = model.config;
  const results: {
    estimator: string;
    m: number;
    causal: boolean;
    /** per head (layer-major), mean over seeds */
    errors: number[];
    median: number;
    medianRatioToBaseline: number;
  }[] = [];
  const headRows: Record<'bidirectional' | 'causal', HeadRow[]> = { bidirectional: [], causal: [] };
  const t0 = performance.now();
  for (const causal of [false, true]) {
    const exact = layers.map(({ q, k, v }) => softmaxAttention(q, k, v, { causal }));
    const rows = headRows[causal ? 'causal' : 'bidirectional'];
    layers.forEach(({ q, k, v }, layer) => {
      const base = meanVisibleValues(v, causal);
      const be = relativeErrorPerHead(base, exact[layer]!);
      const ent = entropyPerHead(q, k, causal);
      const [qn, kn] = [meanScaledNorm2(q), meanScaledNorm2(k)];
      base.dispose();
      for (let h = 0; h < heads; h++) {
        rows.push({
          layer,
          head: h,
          baseline: be[h]!,
          entropy: ent[h]!,
          queryNorm2: qn[h]!,
          keyNorm2: kn[h]!,
        });
      }
    });
    const baselineMedian = median(rows.map((r) => r.baseline));
    for (const [name, est] of Object.entries(ESTIMATORS)) {
      if (causal && est.shrinkage) continue; // shrinkage is bidirectional only
      for (const m of MS) {
        const sum = new Array<number>(layers.length * heads).fill(0);
        for (const seed of SEEDS) {
          layers.forEach(({ q, k, v }, layer) => {
            const dh = q.shape[3];
            const s = 7919 * seed + 31 * layer + m;
            const w = est.iid
              ? gaussianIid(m, dh, { seed: s })
              : gaussianOrthogonal(m, dh, { seed: s });
            const phi = est.make(w);
            const out = favorAttention(q, k, v, {
              featureMap: phi,
              causal,
              ...(est.shrinkage ? { shrinkage: true } : {}),
            });
            relativeErrorPerHead(out, exact[layer]!).forEach((e, h) => {
              sum[layer * heads + h]! += e / SEEDS.length;
            });
            out.dispose();
            phi.dispose?.();
          });
        }
        const med = median(sum);
        results.push({
          estimator: name,
          m,
          causal,
          errors: sum,
          median: med,
          medianRatioToBaseline: med / baselineMedian,
        });
      }
      const last = results.filter((r) => r.estimator === name && r.causal === causal);
      process.stderr.write(
        `${causal ? 'causal' : 'bidir'} ${name}: ${last.map((r) => `${r.m}:${r.median.toFixed(3)}`).join(' ')} (mean(v) ${baselineMedian.toFixed(3)}; ${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
      );
    }
    tf.dispose(exact);
  }
  for (const l of layers) tf.dispose([l.q, l.k, l.v]);
  model.dispose();
  const at = (name: string, causal: boolean, m = 256) =>
    results.find((r) => r.estimator === name && r.causal === causal && r.m === m);
  const softmaxEstimators = Object.keys(ESTIMATORS).filter((n) => !n.startsWith('ReLU'));
  const best = (causal: boolean) =>
    softmaxEstimators
      .map((n) => at(n, causal))
      .filter((r) => r !== undefined)
      .sort((a, b) => a.median - b.median)[0]!;
  writeResults('attention', {
    source: `${source} (trained on fortunes, bench/results/lm-fortunes/train-${source}.json)`,
    data: `${WINDOWS} windows of ${LENGTH} characters of the test split; every layer and head`,
    setup: `error = ‖out − exact‖_F / ‖exact‖_F per head, mean over ${SEEDS.length} seeds of the projection; m = projection rows (hyperbolic, trig and antithetic maps have 2m features); mean(v): each query predicts the mean of the values it may see`,
    backend: `${tf.getBackend()} (tfjs 4.22)`,
    heads: headRows,
    results,
    best: { bidirectional: best(false), causal: best(true) },
  });
}
