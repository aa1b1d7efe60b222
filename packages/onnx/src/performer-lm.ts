/**
 * A trained PerformerLM (`@kernel-attention/performer`) as a standard ONNX model: token ids in,
 * logits out, the weights as initializers, FAVOR+ with the model's own features and stabilizers
 * (the same graph nodes as favorAttentionModel). Prefill: the whole sequence at once.
 */
import { favorNodes } from './attention-graphs.js';
import { GraphBuilder, INT64 } from './graph.js';

/** A tfjs tensor as far as the export needs one. */
interface TensorLike {
  readonly shape: number[];
  dataSync(): ArrayLike<number>;
}

/** What the export reads of a PerformerLM (its public `config` and `weights`). */
export interface PerformerLMLike {
  readonly config: {
    numTokens: number;
    maxSeqLen: number;
    dim: number;
    depth: number;
    heads: number;
    dimHead: number;
    nbFeatures: number;
    causal: boolean;
    kernel: string;
    featureEps: number;
    stabilizer: string;
    attention: string;
    denominatorEps: number;
  };
  readonly weights: {
    tokenEmbedding: TensorLike;
    positionEmbedding: TensorLike | null;
    rotaryTable: TensorLike | null;
    normGamma: TensorLike;
    normBeta: TensorLike;
    outWeight: TensorLike | null;
    outBias: TensorLike | null;
    layers: readonly {
      norm1Gamma: TensorLike;
      norm1Beta: TensorLike;
      wq: TensorLike;
      wk: TensorLike;
      wv: TensorLike;
      bq?: TensorLike;
      bk?: TensorLike;
      bv?: TensorLike;
      wo: TensorLike;
      bo?: TensorLike;
      projection: { rows: number; cols: number; data: Float64Array };
      norm2Gamma: TensorLike;
      norm2Beta: TensorLike;
      w1: TensorLike;
      b1: TensorLike;
      w2: TensorLike;
      b2: TensorLike;
    }[];
  };
}

/** PyTorch's LayerNorm epsilon, as performer's layerNorm. */
const LN_EPS = 1e-5;

/**
 * The serialized ONNX model of a PerformerLM's forward pass: input `tokens` [B, N] (int64, N up
 * to maxSeqLen), output `logits` [B, N, numTokens] — the logits `model.logits(tokens)` gives (the
 * test suite checks them). Supported: FAVOR attention with the 'positive' or 'hyperbolic' kernel
 * and the exact stabilizers (the default), causal or bidirectional, rotary or absolute positions,
 * tied or separate output weights. Refused by name: exact-softmax models, the 'relu' kernel,
 * performer-pytorch's stabilizers, a causal denominatorEps, and models given their own feature
 * map with withFeatureMap().
 *
 * @param model - a PerformerLM (or anything with its `config` and `weights`)
 * @param opts - `{ chunkSize }`: causal positions per chunk (default 64)
 *
 * @example
 * ```ts
 * import { performerLMModel } from '@kernel-attention/onnx';
 * import { PerformerLM } from '@kernel-attention/performer';
 *
 * const model = PerformerLM.create({ numTokens: 32, maxSeqLen: 64, dim: 32, depth: 2, heads: 2, nbFeatures: 16 });
 * const bytes = performerLMModel(model); // a standard .onnx file: tokens [B, N] → logits
 * model.dispose();
 * ```
 */
export function performerLMModel(
  model: PerformerLMLike,
  opts: { chunkSize?: number } = {},
): Uint8Array {
  const fn = 'performerLMModel';
  if (model === null || typeof model !== 'object' || !model.config || !model.weights) {
    throw new TypeError(
      `${fn}: model must be a PerformerLM (with config and weights), got ${model === null ? 'null' : typeof model}`,
    );
  }
  const c = model.config;
  const refuse = (what: string) => {
    throw new RangeError(`${fn}: cannot export ${what} yet`);
  };
  if (c.attention !== 'favor') refuse(`attention '${c.attention}' (FAVOR models only)`);
  if (c.kernel !== 'positive' && c.kernel !== 'hyperbolic') refuse(`the '${c.kernel}' kernel`);
  if (c.stabilizer !== 'exact') refuse(`the '${c.stabilizer}' stabilizer`);
  if (c.causal && c.denominatorEps !== 0) refuse(`a causal denominatorEps (${c.denominatorEps})`);
  if ((model as { customFeatureMap?: unknown }).customFeatureMap) {
    refuse('a model with its own feature map (withFeatureMap)');
  }
  const chunk = opts.chunkSize ?? 64;
  if (!Number.isInteger(chunk) || chunk < 1) {
    throw new RangeError(
      `${fn}: chunkSize must be a positive integer, got ${String(opts.chunkSize)}`,
    );
  }
  const w = model.weights;
  const { heads: H, dimHead: dh } = c;
  const g = new GraphBuilder('performer_lm');
  const t = (x: TensorLike) => g.constant(Float32Array.from(x.dataSync()), x.shape);
  const tokens = g.input('tokens', ['batch', 'length'], INT64);
  const n = g.node('Slice', [g.node('Shape', [tokens]), g.ints([1]), g.ints([2])]);
  /** The first N rows of a [maxSeqLen, X] table. */
  const firstRows = (table: string) => g.node('Slice', [table, g.ints([0]), n, g.ints([0])]);
  const dense = (x: string, weight: TensorLike, bias?: TensorLike | null) => {
    const y = g.node('MatMul', [x, t(weight)]);
    return bias ? g.node('Add', [y, t(bias)]) : y;
  };
  const norm = (x: string, gamma: TensorLike, beta: TensorLike) =>
    g.node('LayerNormalization', [x, t(gamma), t(beta)], { axis: -1, epsilon: { float: LN_EPS } });

  let h = g.node('Gather', [t(w.tokenEmbedding), tokens], { axis: 0 }); // [B, N, dim]
  if (w.positionEmbedding) h = g.node('Add', [h, firstRows(t(w.positionEmbedding))]);

  // rotary: t·cos + rotate_every_two(t)·sin, the tables' halves with every value repeated twice
  let sin: string | null = null;
  let cos: string | null = null;
  let rotate: string | null = null;
  if (w.rotaryTable) {
    const table = Float32Array.from(w.rotaryTable.dataSync());
    const rows = w.rotaryTable.shape[0]!;
    const half = dh / 2;
    const twice = (offset: number) =>
      Float32Array.from({ length: rows * dh }, (_, idx) => {
        const [r, col] = [Math.floor(idx / dh), idx % dh];
        return table[r * dh + offset + Math.floor(col / 2)]!;
      });
    sin = firstRows(g.constant(twice(0), [rows, dh]));
    cos = firstRows(g.constant(twice(half), [rows, dh]));
    const R = new Float32Array(dh * dh);
    for (let i = 0; i < dh; i += 2) {
      R[(i + 1) * dh + i] = -1;
      R[i * dh + i + 1] = 1;
    }
    rotate = g.constant(R, [dh, dh]);
  }
  const rotary = (x: string) =>
    rotate === null
      ? x
      : g.node('Add', [
          g.node('Mul', [x, cos!]),
          g.node('Mul', [g.node('MatMul', [x, rotate]), sin!]),
        ]);
  /** [B, N, H·dh] → [B, H, N, dh] */
  const split = (x: string) =>
    g.node('Transpose', [g.node('Reshape', [x, g.ints([0, 0, H, dh])])], { perm: [0, 2, 1, 3] });

  for (const l of w.layers) {
    const a = norm(h, l.norm1Gamma, l.norm1Beta);
    const q = rotary(split(dense(a, l.wq, l.bq)));
    const k = rotary(split(dense(a, l.wk, l.bk)));
    const v = split(dense(a, l.wv, l.bv));
    const projection = g.constant(Float32Array.from(l.projection.data), [
      l.projection.rows,
      l.projection.cols,
    ]);
    const o = favorNodes(g, {
      q,
      k,
      v,
      projection,
      mask: null,
      dim: dh,
      featureMap: c.kernel as 'positive' | 'hyperbolic',
      eps: c.featureEps,
      causal: c.causal,
      chunk,
    });
    const merged = g.node('Reshape', [
      g.node('Transpose', [o], { perm: [0, 2, 1, 3] }),
      g.ints([0, 0, H * dh]),
    ]);
    h = g.node('Add', [h, dense(merged, l.wo, l.bo)]);
    const b = dense(norm(h, l.norm2Gamma, l.norm2Beta), l.w1, l.b1);
    const gelu = g.node('Mul', [
      g.node('Mul', [b, g.constant([0.5])]),
      g.node('Add', [
        g.node('Erf', [g.node('Mul', [b, g.constant([Math.SQRT1_2])])]),
        g.constant([1]),
      ]),
    ]);
    h = g.node('Add', [h, dense(gelu, l.w2, l.b2)]);
  }
  const x = norm(h, w.normGamma, w.normBeta);
  const logits =
    w.outWeight === null
      ? g.node('MatMul', [x, g.node('Transpose', [t(w.tokenEmbedding)], { perm: [1, 0] })])
      : dense(x, w.outWeight, w.outBias);
  g.output(logits, 'logits', ['batch', 'length', c.numTokens]);
  return g.model();
}
