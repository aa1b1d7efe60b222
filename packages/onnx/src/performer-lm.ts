/**
 * A trained PerformerLM (`@kernel-attention/performer`) as a standard ONNX model: token ids in,
 * logits out, the weights as initializers, FAVOR+ with the model's own features and stabilizers
 * (the same graph nodes as favorAttentionModel). Prefill: the whole sequence at once.
 */
import {
  type CausalStateNames,
  type ExpFeatureInputs,
  expFeatureParts,
  favorNodes,
  ratio as ratioOf,
  withOnes,
} from './attention-graphs.js';
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

/** The kernels the export covers (PerformerLMConfig.kernel). */
const KERNELS: readonly string[] = ['positive', 'hyperbolic', 'relu'];

/** generalized's default kernelEps: the floor of the 'relu' kernel's features (PerformerLM uses it). */
const RELU_EPS = 1e-3;

/** The graph's feature map and floor for the model's kernel. */
function kernelOf(c: PerformerLMLike['config']): {
  map: 'positive' | 'hyperbolic' | 'relu';
  eps: number;
} {
  const map = c.kernel as 'positive' | 'hyperbolic' | 'relu';
  return { map, eps: map === 'relu' ? RELU_EPS : c.featureEps };
}

/** PyTorch's LayerNorm epsilon, as performer's layerNorm. */
const LN_EPS = 1e-5;

/** Refuses, by name, what the export does not cover; returns the chunk size. */
function checkExportable(fn: string, model: PerformerLMLike, chunkSize: unknown): number {
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
  if (!KERNELS.includes(c.kernel)) refuse(`the '${c.kernel}' kernel`);
  if (c.stabilizer !== 'exact') refuse(`the '${c.stabilizer}' stabilizer`);
  if (c.causal && c.denominatorEps !== 0) refuse(`a causal denominatorEps (${c.denominatorEps})`);
  if ((model as { customFeatureMap?: unknown }).customFeatureMap) {
    refuse('a model with its own feature map (withFeatureMap)');
  }
  const chunk = chunkSize ?? 64;
  if (!Number.isInteger(chunk) || (chunk as number) < 1) {
    throw new RangeError(`${fn}: chunkSize must be a positive integer, got ${String(chunkSize)}`);
  }
  return chunk as number;
}

/**
 * Rotary positions as graph nodes: t·cos + rotate_every_two(t)·sin, the table's halves with every
 * value repeated twice (identity without a table).
 */
function rotaryNodes(
  g: GraphBuilder,
  table: TensorLike | null,
  dh: number,
  rowsOf: (table: string) => string,
): (x: string) => string {
  if (table === null) return (x) => x;
  const values = Float32Array.from(table.dataSync());
  const rows = table.shape[0]!;
  const half = dh / 2;
  const twice = (offset: number) =>
    Float32Array.from({ length: rows * dh }, (_, idx) => {
      const [r, col] = [Math.floor(idx / dh), idx % dh];
      return values[r * dh + offset + Math.floor(col / 2)]!;
    });
  const sin = rowsOf(g.constant(twice(0), [rows, dh]));
  const cos = rowsOf(g.constant(twice(half), [rows, dh]));
  const R = new Float32Array(dh * dh);
  for (let i = 0; i < dh; i += 2) {
    R[(i + 1) * dh + i] = -1;
    R[i * dh + i + 1] = 1;
  }
  const rotate = g.constant(R, [dh, dh]);
  return (x) =>
    g.node('Add', [g.node('Mul', [x, cos]), g.node('Mul', [g.node('MatMul', [x, rotate]), sin])]);
}

/**
 * The model's layers written into a graph. `positions` picks the rows of the position tables:
 * the first N (prefill) or the given position (one-token step). `attend(layer, q, k, v)` is the
 * attention of one layer.
 */
function writeModel(
  g: GraphBuilder,
  model: PerformerLMLike,
  tokens: string,
  rowsOf: (table: string) => string,
  attend: (layer: number, q: string, k: string, v: string, projection: string) => string,
): { hidden: string; logits: string } {
  const c = model.config;
  const w = model.weights;
  const { heads: H, dimHead: dh } = c;
  const t = (x: TensorLike) => g.constant(Float32Array.from(x.dataSync()), x.shape);
  const dense = (x: string, weight: TensorLike, bias?: TensorLike | null) => {
    const y = g.node('MatMul', [x, t(weight)]);
    return bias ? g.node('Add', [y, t(bias)]) : y;
  };
  const norm = (x: string, gamma: TensorLike, beta: TensorLike) =>
    g.node('LayerNormalization', [x, t(gamma), t(beta)], { axis: -1, epsilon: { float: LN_EPS } });

  let h = g.node('Gather', [t(w.tokenEmbedding), tokens], { axis: 0 }); // [B, N, dim]
  if (w.positionEmbedding) h = g.node('Add', [h, rowsOf(t(w.positionEmbedding))]);

  const rotary = rotaryNodes(g, w.rotaryTable, dh, rowsOf);
  /** [B, N, H·dh] → [B, H, N, dh] */
  const split = (x: string) =>
    g.node('Transpose', [g.node('Reshape', [x, g.ints([0, 0, H, dh])])], { perm: [0, 2, 1, 3] });

  w.layers.forEach((l, i) => {
    const a = norm(h, l.norm1Gamma, l.norm1Beta);
    const q = rotary(split(dense(a, l.wq, l.bq)));
    const k = rotary(split(dense(a, l.wk, l.bk)));
    const v = split(dense(a, l.wv, l.bv));
    const projection = g.constant(Float32Array.from(l.projection.data), [
      l.projection.rows,
      l.projection.cols,
    ]);
    const o = attend(i, q, k, v, projection);
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
  });
  const x = norm(h, w.normGamma, w.normBeta);
  const logits =
    w.outWeight === null
      ? g.node('MatMul', [x, g.node('Transpose', [t(w.tokenEmbedding)], { perm: [1, 0] })])
      : dense(x, w.outWeight, w.outBias);
  return { hidden: x, logits };
}

/**
 * The names of layer i's state values (the step graph's inputs; its outputs add `_next`).
 *
 * @param i - the layer index, from 0
 */
export const stateNames = (i: number) => ({
  S: `state_S_${i}`,
  P: `state_P_${i}`,
  F: `state_F_${i}`,
});

/**
 * The serialized ONNX model of a PerformerLM's forward pass: input `tokens` [B, N] (int64, N up
 * to maxSeqLen), output `logits` [B, N, numTokens] — the logits `model.logits(tokens)` gives (the
 * test suite checks them); for a causal model also the recurrent state after the last position
 * (`state_S_i`, `state_P_i`, `state_F_i` per layer i), which performerLMStepModel continues from.
 * Supported: FAVOR attention with the 'positive', 'hyperbolic' or 'relu' kernel and the exact stabilizers
 * (the default), causal or bidirectional, rotary or absolute positions, tied or separate output
 * weights. Refused by name: exact-softmax models, performer-pytorch's
 * stabilizers, a causal denominatorEps, and models given their own feature map with
 * withFeatureMap().
 *
 * @param model - a PerformerLM (or anything with its `config` and `weights`)
 * @param opts - `{ chunkSize, mask }`: causal positions per chunk (default 64); `mask: true` adds a
 *   `mask` input [B, N] (float, 1 keep, 0 pad) to a bidirectional model
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
  opts: { chunkSize?: number; mask?: boolean } = {},
): Uint8Array {
  const g = new GraphBuilder('performer_lm');
  const { logits } = writeForward(g, model, opts, 'performerLMModel');
  g.output(logits, 'logits', ['batch', 'length', model.config.numTokens]);
  return g.model();
}

/** The forward pass into `g`: tokens (and mask) inputs, the causal states as outputs. */
function writeForward(
  g: GraphBuilder,
  model: PerformerLMLike,
  opts: { chunkSize?: number; mask?: boolean },
  fn: string,
): { hidden: string; logits: string; mask: string | null } {
  const chunk = checkExportable(fn, model, opts?.chunkSize);
  const c = model.config;
  if (opts?.mask && c.causal) {
    throw new RangeError(
      `${fn}: a padding mask is for bidirectional models (causal ones pad at the end)`,
    );
  }
  const tokens = g.input('tokens', ['batch', 'length'], INT64);
  const mask = opts?.mask ? g.input('mask', ['batch', 'length']) : null;
  const n = g.node('Slice', [g.node('Shape', [tokens]), g.ints([1]), g.ints([2])]);
  const states: CausalStateNames[] = [];
  const result = writeModel(
    g,
    model,
    tokens,
    (table) => g.node('Slice', [table, g.ints([0]), n, g.ints([0])]),
    (_, q, k, v, projection) => {
      const { out, state } = favorNodes(g, {
        q,
        k,
        v,
        projection,
        mask,
        dim: c.dimHead,
        featureMap: kernelOf(c).map,
        eps: kernelOf(c).eps,
        causal: c.causal,
        chunk,
      });
      if (state) states.push(state);
      return out;
    },
  );
  states.forEach((s, i) => {
    const names = stateNames(i);
    g.output(s.S, names.S, null);
    g.output(s.P, names.P, null);
    g.output(s.F, names.F, null);
  });
  return { ...result, mask };
}

/** What the export reads of a PerformerEncoder: its body and classification head. */
export interface PerformerEncoderLike {
  readonly body: PerformerLMLike;
  readonly classifier: { weight: TensorLike; bias: TensorLike } | null;
}

/**
 * The serialized ONNX model of a PerformerEncoder: inputs `tokens` [B, N] (int64) and `mask`
 * [B, N] (float, 1 keep, 0 pad), outputs `mlm_logits` [B, N, numTokens] and, when the encoder has
 * a classification head, `class_logits` [B, numClasses] (the mean final hidden state over the
 * unpadded positions → the head), as `mlmLogits` and `classify` give them.
 *
 * @param encoder - a PerformerEncoder (see performerLMModel for what its body may use)
 * @param opts - `{ chunkSize }` (unused: encoders are bidirectional)
 */
export function performerEncoderModel(
  encoder: PerformerEncoderLike,
  opts: { chunkSize?: number } = {},
): Uint8Array {
  const fn = 'performerEncoderModel';
  if (encoder === null || typeof encoder !== 'object' || !encoder.body) {
    throw new TypeError(
      `${fn}: encoder must be a PerformerEncoder (with body), got ${encoder === null ? 'null' : typeof encoder}`,
    );
  }
  const g = new GraphBuilder('performer_encoder');
  const { hidden, logits, mask } = writeForward(g, encoder.body, { ...opts, mask: true }, fn);
  g.output(logits, 'mlm_logits', ['batch', 'length', encoder.body.config.numTokens]);
  const head = encoder.classifier;
  if (head !== null) {
    const keep = g.node('Unsqueeze', [mask!, g.ints([2])]); // [B, N, 1]
    const pooled = g.node('Div', [
      g.node('ReduceSum', [g.node('Mul', [hidden, keep]), g.ints([1])], { keepdims: 0 }),
      g.node('Max', [g.node('ReduceSum', [keep, g.ints([1])], { keepdims: 0 }), g.constant([1])]),
    ]);
    const weight = g.constant(Float32Array.from(head.weight.dataSync()), head.weight.shape);
    const bias = g.constant(Float32Array.from(head.bias.dataSync()), head.bias.shape);
    g.output(g.node('Add', [g.node('MatMul', [pooled, weight]), bias]), 'class_logits', [
      'batch',
      head.weight.shape[1]!,
    ]);
  }
  return g.model();
}

/**
 * The serialized ONNX model of one decoding step of a causal PerformerLM: inputs `token` [B, 1]
 * (int64), `position` [1] (int64: the token's position, from 0) and each layer's state
 * (`state_S_i`, `state_P_i`, `state_F_i`, as performerLMModel outputs them), outputs `logits`
 * [B, 1, numTokens] and the states after the token (`state_S_i_next`, …). Constant work per
 * token, whatever the position: generation is linear in its length. Stepping from the prompt's
 * state gives the logits the full forward gives on the same prefix.
 *
 * @param model - a causal PerformerLM (see performerLMModel for what is supported)
 */
export function performerLMStepModel(model: PerformerLMLike): Uint8Array {
  const fn = 'performerLMStepModel';
  checkExportable(fn, model, undefined);
  const c = model.config;
  if (!c.causal) throw new RangeError(`${fn}: stepping needs a causal model`);
  const g = new GraphBuilder('performer_lm_step');
  const token = g.input('token', ['batch', 1], INT64);
  const position = g.input('position', [1], INT64);
  const { map, eps } = kernelOf(c);
  const { logits } = writeModel(
    g,
    model,
    token,
    (table) => g.node('Gather', [table, position], { axis: 0 }), // [1, X]
    (i, q, k, v, projection) => {
      const names = stateNames(i);
      const S = g.input(names.S, null);
      const P = g.input(names.P, null); // [B, H, 1]
      const F = g.input(names.F, null); // [B, H, 1, dv + 1]
      // the query's features and the key's as e^ℓ·b, as in favorNodes: the exponential maps
      // stabilized (the floor eps kept apart), relu's position-local (ℓ = 0, its eps inside b)
      const { phiQ, ell, b, floor } =
        map === 'relu'
          ? reluStepParts(g, { q, k, projection, dim: c.dimHead, eps })
          : expStepParts(g, { q, k, projection, dim: c.dimHead, map, eps });
      // the new key joins the state first (query i sees key i); s = the new running maximum
      const pCol = g.node('Unsqueeze', [P, g.ints([3])]);
      const s = g.node('Max', [pCol, ell]);
      const v1 = withOnes(g, v);
      const bw = g.node('Mul', [b, g.node('Exp', [g.node('Sub', [ell, s])])]);
      const S1 = g.node('Add', [
        g.node('Mul', [g.node('Exp', [g.node('Sub', [pCol, s])]), S]),
        g.node('MatMul', [g.node('Transpose', [bw], { perm: [0, 1, 3, 2] }), v1]),
      ]);
      const F1 = g.node('Add', [F, v1]);
      const P1 = g.node('Squeeze', [s, g.ints([3])]);
      g.output(S1, `${names.S}_next`, null);
      g.output(P1, `${names.P}_next`, null);
      g.output(F1, `${names.F}_next`, null);
      const both = g.node('Add', [
        g.node('MatMul', [phiQ, S1]),
        g.node('Mul', [
          g.node('Mul', [
            g.node('ReduceSum', [phiQ, g.ints([-1])], { keepdims: 1 }),
            g.constant([floor]),
          ]),
          F1,
        ]),
      ]);
      return ratioOf(g, both);
    },
  );
  g.output(logits, 'logits', ['batch', 1, c.numTokens]);
  return g.model();
}

/** One step's parts for the positive and hyperbolic kernels: ℓ = max_f a, b = e^{a − ℓ}. */
function expStepParts(
  g: GraphBuilder,
  o: ExpFeatureInputs,
): { phiQ: string; ell: string; b: string; floor: number } {
  const { phiQ, a } = expFeatureParts(g, o);
  const ell = g.node('ReduceMax', [a], { axes: [-1], keepdims: 1 }); // [B, H, 1, 1]
  return { phiQ, ell, b: g.node('Exp', [g.node('Sub', [a, ell])]), floor: o.eps };
}

/** One step's parts for the relu kernel: φ = relu(W·x̂) + eps for both, ℓ = 0 (plain sums). */
function reluStepParts(
  g: GraphBuilder,
  o: { q: string; k: string; projection: string; dim: number; eps: number },
): { phiQ: string; ell: string; b: string; floor: number } {
  const c = g.constant([o.dim ** -0.25]);
  const wt = g.node('Transpose', [o.projection], { perm: [1, 0] });
  const features = (x: string) =>
    g.node('Add', [
      g.node('Relu', [g.node('MatMul', [g.node('Mul', [x, c]), wt])]),
      g.constant([o.eps]),
    ]);
  const b = features(o.k);
  const ell = g.node('Mul', [
    g.node('ReduceMax', [b], { axes: [-1], keepdims: 1 }),
    g.constant([0]),
  ]);
  return { phiQ: features(o.q), ell, b, floor: 0 };
}
