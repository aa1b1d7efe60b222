import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import { createRng } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { type LayerFeatureMap, PerformerLM } from '../models/performer-lm/performer-lm.js';
import { loadHeldOutDocuments, loadPretrained } from '../pretrained/pretrained.js';
import { encodeDocuments } from '../text/char-tokenizer.js';
import { train } from '../train/trainer.js';

export interface EvaluateKernelOptions {
  /** The model whose real attention is used (default: the pretrained 'fortunes-performer'). */
  model?: PerformerLM;
  /**
   * Held-out documents, tokenized with charTokenizer (default: the pretrained model's held-out
   * documents). Evaluation uses windows from the second half of their token stream, fine-tuning
   * batches from the first half, so the two never overlap.
   */
  documents?: string[];
  /** Window length (default 256). */
  length?: number;
  /** Number of evaluation windows (default 8). */
  windows?: number;
  /** Causal attention, as the model runs it (default: the model's config.causal). */
  causal?: boolean;
  /** Fine-tuning steps with your kernel swapped in (default 0: no fine-tune). */
  fineTuneSteps?: number;
  /** Adam's learning rate for the fine-tune (default 5e-4). */
  learningRate?: number;
  /** Seed of the fine-tuning batches (default 0). */
  seed?: number;
}

export interface HeadEvaluation {
  layer: number;
  head: number;
  /** ‖out − exact‖_F / ‖exact‖_F of your kernel's attention output on this head */
  error: number;
  /** The same for the trivial estimator that predicts mean(v) (the values each query sees) */
  meanVError: number;
}

export interface KernelEvaluation {
  heads: HeadEvaluation[];
  /** Median over heads of `error` and of `meanVError`. */
  medianError: number;
  medianMeanVError: number;
  /** Bits per character on the evaluation windows. */
  bitsPerChar: {
    /** the model's weights with exact softmax attention */
    exact: number;
    /** the model as it is (its own attention) */
    model: number;
    /** your kernel swapped in, no training */
    swapped: number;
    /** after `fineTuneSteps` steps with your kernel (null without a fine-tune) */
    fineTuned: number | null;
  };
  windows: number;
  length: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

/**
 * ‖out − exact‖_F / ‖exact‖_F for each head of [B, H, L, dv] attention outputs (over batch,
 * positions and value dimensions).
 *
 * @param out - the approximation [B, H, L, dv]
 * @param exact - the reference, same shape
 */
export function relativeErrorPerHead(out: tf.Tensor, exact: tf.Tensor): number[] {
  return tf.tidy(() => {
    const num = tf.sqrt(tf.sum(tf.square(tf.sub(out, exact)), [0, 2, 3]));
    const den = tf.maximum(tf.sqrt(tf.sum(tf.square(exact), [0, 2, 3])), 1e-30);
    return Array.from(tf.div(num, den).dataSync());
  });
}

/**
 * The trivial attention estimator every other is judged against: each query's mean of the values
 * it may see — all of v [B, H, L, dv], or (causal) the rows up to its own.
 *
 * @param v - values [B, H, L, dv]
 * @param causal - whether query i sees only keys ≤ i (a running mean)
 */
export function meanVisibleValues(v: tf.Tensor, causal: boolean): tf.Tensor {
  return tf.tidy(() => {
    if (!causal) return tf.broadcastTo(tf.mean(v, 2, true), v.shape);
    const L = v.shape[2]!;
    return tf.div(tf.cumsum(v, 2), tf.reshape(tf.range(1, L + 1), [1, 1, L, 1]));
  });
}

function bitsPerChar(model: PerformerLM, inputs: number[][], targets: number[][]): number {
  let nats = 0;
  for (let i = 0; i < inputs.length; i += 4) {
    const loss = model.loss(inputs.slice(i, i + 4), targets.slice(i, i + 4));
    nats += loss.dataSync()[0]! * inputs.slice(i, i + 4).length;
    loss.dispose();
  }
  return nats / inputs.length / Math.LN2;
}

/**
 * How your kernel does on real attention, in one call: the attention-output error of
 * `featureMap` against exact softmax attention on every head of a trained model (its real q, k, v
 * on held-out text), next to the mean(v) baseline; and the model's bits per character with your
 * kernel swapped in for its attention — before and, with `fineTuneSteps`, after a short fine-tune
 * (on a copy: the model you pass is not changed). `featureMap(layer, projection)` gives each
 * layer's map, as in PerformerLM.withFeatureMap. Training needs tfjs's gradients registered
 * (import '@tensorflow/tfjs', or '@tensorflow/tfjs-core/dist/register_all_gradients').
 *
 * @param featureMap - the feature map to evaluate (a FeatureMap, or a function of the layer index returning one)
 * @param opts - `{ model, documents, length, windows, causal, seed, … }` (see EvaluateKernelOptions)
 *
 * @example
 * ```ts
 * import { positiveSoftmax } from '@kernel-attention/feature-maps';
 * import { evaluateKernel } from '@kernel-attention/performer';
 * // the pretrained fortunes model's 16 heads on 2 held-out windows of 256 characters
 * const report = await evaluateKernel((layer, projection) => positiveSoftmax({ projection }), {
 *   windows: 2,
 * });
 * console.log(report.medianError, report.medianMeanVError, report.bitsPerChar);
 * ```
 */
export async function evaluateKernel(
  featureMap: LayerFeatureMap,
  opts: EvaluateKernelOptions = {},
): Promise<KernelEvaluation> {
  const fn = 'evaluateKernel';
  const { length, count, steps } = checkEvaluation(fn, featureMap, opts);
  const ownModel = opts.model === undefined;
  const model = opts.model ?? (await loadPretrained());
  try {
    if (length > model.config.maxSeqLen) {
      throw new RangeError(
        `${fn}: length ${length} exceeds the model's maxSeqLen ${model.config.maxSeqLen}`,
      );
    }
    const causal = opts.causal ?? model.config.causal;
    const text = evaluationWindows(
      fn,
      opts.documents ?? (await loadHeldOutDocuments()),
      length,
      count,
    );
    // 1. real attention, head by head
    const heads = headErrors(model, featureMap, text.inputs, causal);
    // 2. the model with exact attention, as it is, and with the kernel swapped in (fine-tuned)
    const exactModel = model.withAttention('softmax');
    const exact = bitsPerChar(exactModel, text.inputs, text.targets);
    exactModel.dispose();
    const own = bitsPerChar(model, text.inputs, text.targets);
    const { swapped, fineTuned } = await swappedIn(model, featureMap, text, steps, opts);
    return {
      heads,
      medianError: median(heads.map((h) => h.error)),
      medianMeanVError: median(heads.map((h) => h.meanVError)),
      bitsPerChar: { exact, model: own, swapped, fineTuned },
      windows: count,
      length,
    };
  } finally {
    if (ownModel) model.dispose();
  }
}

/** Checks evaluateKernel's arguments; returns the window length and count and the fine-tune steps. */
function checkEvaluation(
  fn: string,
  featureMap: LayerFeatureMap,
  opts: EvaluateKernelOptions,
): { length: number; count: number; steps: number } {
  if (typeof featureMap !== 'function') {
    throw new TypeError(
      `${fn}: featureMap must be a function (layer, projection) => FeatureMap, got ${featureMap === null ? 'null' : typeof featureMap}`,
    );
  }
  if (opts === null || typeof opts !== 'object') {
    throw new TypeError(
      `${fn}: options must be an object, got ${opts === null ? 'null' : typeof opts}`,
    );
  }
  const length = opts.length ?? 256;
  const count = opts.windows ?? 8;
  const steps = opts.fineTuneSteps ?? 0;
  for (const [name, v, min] of [
    ['length', length, 2],
    ['windows', count, 1],
    ['fineTuneSteps', steps, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) {
      throw new RangeError(`${fn}: ${name} must be an integer >= ${min}, got ${String(v)}`);
    }
  }
  return { length, count, steps };
}

/** The evaluation text: `count` windows of `length` tokens from the second half of the documents. */
interface EvaluationText {
  stream: Int32Array;
  /** Where the evaluation half starts (training batches come from before it). */
  half: number;
  inputs: number[][];
  targets: number[][];
}

function evaluationWindows(
  fn: string,
  documents: unknown,
  length: number,
  count: number,
): EvaluationText {
  if (!Array.isArray(documents) || documents.some((d) => typeof d !== 'string')) {
    throw new TypeError(`${fn}: documents must be an array of strings`);
  }
  const stream = encodeDocuments(documents as string[]);
  const half = Math.floor(stream.length / 2);
  const available = Math.floor((stream.length - half - 1) / length);
  if (available < count) {
    throw new RangeError(
      `${fn}: the documents give ${available} evaluation windows of ${length} tokens (the second half of ${stream.length} tokens), ${count} asked for`,
    );
  }
  const inputs: number[][] = [];
  const targets: number[][] = [];
  for (let w = 0; w < count; w++) {
    const o = half + w * length;
    inputs.push(Array.from(stream.subarray(o, o + length)));
    targets.push(Array.from(stream.subarray(o + 1, o + length + 1)));
  }
  return { stream, half, inputs, targets };
}

/** The kernel's attention-output error on every head of the model, and mean(v)'s. */
function headErrors(
  model: PerformerLM,
  featureMap: LayerFeatureMap,
  inputs: number[][],
  causal: boolean,
): HeadEvaluation[] {
  const heads: HeadEvaluation[] = [];
  const layers = model.attentionInputs(inputs);
  try {
    layers.forEach(({ q, k, v }, layer) => {
      const map = featureMap(layer, model.projections[layer]!);
      try {
        const [errors, baseline] = tf.tidy(() => {
          const exact = softmaxAttention(q, k, v, { causal });
          const out = favorAttention(q, k, v, { featureMap: map, causal });
          return [
            relativeErrorPerHead(out, exact),
            relativeErrorPerHead(meanVisibleValues(v, causal), exact),
          ];
        });
        errors.forEach((error, head) => {
          heads.push({ layer, head, error, meanVError: baseline[head]! });
        });
      } finally {
        map.dispose?.();
      }
    });
  } finally {
    for (const l of layers) tf.dispose([l.q, l.k, l.v]);
  }
  return heads;
}

/** Bits per character with the kernel swapped in, and after `steps` of fine-tuning a copy. */
async function swappedIn(
  model: PerformerLM,
  featureMap: LayerFeatureMap,
  text: EvaluationText,
  steps: number,
  opts: EvaluateKernelOptions,
): Promise<{ swapped: number; fineTuned: number | null }> {
  const { inputs, targets, stream, half } = text;
  const length = inputs[0]!.length;
  if (steps === 0) {
    const withKernel = model.withFeatureMap(featureMap);
    const swapped = bitsPerChar(withKernel, inputs, targets);
    withKernel.dispose();
    return { swapped, fineTuned: null };
  }
  const copy = PerformerLM.fromSafetensors(model.toSafetensors());
  const withKernel = copy.withFeatureMap(featureMap);
  try {
    const swapped = bitsPerChar(withKernel, inputs, targets);
    const rng = createRng(opts.seed ?? 0);
    const batch = () => {
      const rows: number[][] = [];
      const next: number[][] = [];
      for (let b = 0; b < 4; b++) {
        const o = Math.floor(rng.uniform() * (half - length - 1));
        rows.push(Array.from(stream.subarray(o, o + length)));
        next.push(Array.from(stream.subarray(o + 1, o + length + 1)));
      }
      return { inputs: rows, targets: next };
    };
    await train(withKernel, {
      steps,
      batch,
      learningRate: opts.learningRate ?? 5e-4,
      progress: false,
    });
    return { swapped, fineTuned: bitsPerChar(withKernel, inputs, targets) };
  } finally {
    withKernel.dispose();
    copy.dispose();
  }
}
