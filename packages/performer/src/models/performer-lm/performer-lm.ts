import {
  type CausalState,
  causalState,
  favorAttention,
  favorCausalStep,
  softmaxAttention,
} from '@kernel-attention/core';
import {
  type FeatureMap,
  generalized,
  hyperbolicSoftmax,
  positiveSoftmax,
} from '@kernel-attention/feature-maps';
import {
  createRng,
  gaussianOrthogonal,
  type Matrix,
  sampleLogits,
} from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import {
  type Attend,
  type AttentionProjections,
  type BlockWeights,
  type HeadLayout,
  multiHeadAttention,
  sinusoids,
  transformerBlock,
} from '../../block/transformer-block.js';
import { dense, layerNorm, rotateEveryTwo } from '../../ops.js';
import { readSafetensors, readSafetensorsMetadata, writeSafetensors } from '../../safetensors.js';
import { type PerformerLMConfig, type ResolvedConfig, resolveConfig } from './config.js';

/** Weights of one layer: the block's (projections as [in, out], x·W) and its FAVOR+ projection. */
export interface PerformerLayerWeights extends BlockWeights, AttentionProjections {
  /** FAVOR+ projection ω [nbFeatures, dimHead]. */
  projection: Matrix;
}

export interface PerformerLMWeights {
  tokenEmbedding: tf.Tensor2D;
  /** Absolute position embedding [maxSeqLen, dim] (fixed sinusoids or learned). */
  positionEmbedding: tf.Tensor2D | null;
  /** Rotary table [maxSeqLen, dimHead]: per row [sin half | cos half]. */
  rotaryTable: tf.Tensor2D | null;
  layers: PerformerLayerWeights[];
  normGamma: tf.Tensor1D;
  normBeta: tf.Tensor1D;
  /** [dim, numTokens]; null when tied to the token embedding. */
  outWeight: tf.Tensor2D | null;
  outBias: tf.Tensor1D | null;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 (default) picks the most likely token; otherwise logits / temperature are sampled. */
  temperature?: number;
  /** Sample among the topK most likely tokens only. */
  topK?: number;
  /** Seed of the sampler (default 0): the same seed gives the same tokens. */
  seed?: number;
  /** Called with each new token and its logits [numTokens] (for streaming). */
  onToken?: (token: number, logits: Float32Array) => void;
}

/**
 * A Performer language model (Choromanski et al. 2020): token embedding (+ absolute positions),
 * `depth` pre-norm blocks of FAVOR+ attention (rotary positions on queries and keys) and a GELU
 * feed-forward, a final LayerNorm and the output projection. Causal by default.
 *
 * `logits(tokens)` runs whole sequences; `generate(prompt)` decodes with core's recurrent causal
 * state — constant work per new token — and gives the logits the full forward gives on the same
 * prefix. Load performer-pytorch checkpoints with `loadPerformerPytorch`.
 */
export class PerformerLM {
  readonly config: ResolvedConfig;
  readonly weights: PerformerLMWeights;
  private featureMaps: (FeatureMap & { dispose?(): void })[];
  private readonly rotateMatrix: tf.Tensor2D | null;

  /** A researcher's own feature maps (withFeatureMap), or null for the configured kernel. */
  private readonly customFeatureMap: LayerFeatureMap | null;

  /** False for a model made by withAttention(): it shares (and does not free) the weights. */
  private readonly ownsWeights: boolean;

  /**
   * @param config - the model's configuration (see PerformerLMConfig)
   * @param weights - its weights, owned by the model from now on
   * @param opts - `{ featureMap }`: a feature map per layer instead of positive softmax features
   */
  constructor(
    config: PerformerLMConfig,
    weights: PerformerLMWeights,
    opts: { ownsWeights?: boolean; featureMap?: LayerFeatureMap } = {},
  ) {
    this.ownsWeights = opts.ownsWeights ?? true;
    this.config = resolveConfig('PerformerLM', config);
    this.weights = weights;
    this.customFeatureMap = opts.featureMap ?? null;
    this.featureMaps = weights.layers.map((l, i) => this.featureMapOf(l.projection, i));
    this.rotateMatrix = this.config.rotary ? tf.keep(rotateEveryTwo(this.config.dimHead)) : null;
  }

  /** True for a model made by `withFeatureMap` (its attention uses a researcher's own features). */
  get usesCustomFeatureMap(): boolean {
    return this.customFeatureMap !== null;
  }

  /**
   * A freshly initialised model (normal(0, 0.02) embeddings, Glorot-uniform projections,
   * block-orthogonal random features), all from `seed`.
   *
   * @param config - the model's configuration (see PerformerLMConfig)
   * @param opts - `{ seed }` for the initial weights and random features
   */
  static create(config: PerformerLMConfig, opts: { seed?: number } = {}): PerformerLM {
    const c = resolveConfig('PerformerLM.create', config);
    const rng = createRng(opts.seed ?? 0);
    const seedOf = () => Math.floor(rng.uniform() * 2 ** 31);
    const glorot = (rows: number, cols: number): tf.Tensor2D => {
      const limit = Math.sqrt(6 / (rows + cols));
      return variable(() =>
        tf.randomUniform([rows, cols], -limit, limit, 'float32', seedOf()),
      ) as tf.Variable<tf.Rank.R2>;
    };
    const zeros = (n: number) => variable(() => tf.zeros([n])) as tf.Variable<tf.Rank.R1>;
    const ones = (n: number) => variable(() => tf.ones([n])) as tf.Variable<tf.Rank.R1>;
    const inner = c.heads * c.dimHead;
    const ff = c.dim * c.ffMult;
    const weights: PerformerLMWeights = {
      tokenEmbedding: variable(() =>
        tf.randomNormal([c.numTokens, c.dim], 0, 0.02, 'float32', seedOf()),
      ) as tf.Variable<tf.Rank.R2>,
      positionEmbedding: c.absolutePositions
        ? tf.tensor2d(sinusoids(c.maxSeqLen, c.dim), [c.maxSeqLen, c.dim])
        : null,
      rotaryTable: c.rotary
        ? tf.tensor2d(sinusoids(c.maxSeqLen, c.dimHead), [c.maxSeqLen, c.dimHead])
        : null,
      layers: Array.from({ length: c.depth }, () => ({
        norm1Gamma: ones(c.dim),
        norm1Beta: zeros(c.dim),
        wq: glorot(c.dim, inner),
        wk: glorot(c.dim, inner),
        wv: glorot(c.dim, inner),
        ...(c.qkvBias ? { bq: zeros(inner), bk: zeros(inner), bv: zeros(inner) } : {}),
        wo: glorot(inner, c.dim),
        ...(c.attnOutBias ? { bo: zeros(c.dim) } : {}),
        projection: gaussianOrthogonal(c.nbFeatures, c.dimHead, { seed: seedOf() }),
        norm2Gamma: ones(c.dim),
        norm2Beta: zeros(c.dim),
        w1: glorot(c.dim, ff),
        b1: zeros(ff),
        w2: glorot(ff, c.dim),
        b2: zeros(c.dim),
      })),
      normGamma: ones(c.dim),
      normBeta: zeros(c.dim),
      outWeight: c.tieEmbed ? null : glorot(c.dim, c.numTokens),
      outBias: c.tieEmbed ? null : zeros(c.numTokens),
    };
    return new PerformerLM(c, weights);
  }

  /** Checks token ids [B][N] (or a 2-D tensor of them) and returns them as rows of numbers. */
  private tokenRows(fn: string, tokens: number[][] | tf.Tensor2D): number[][] {
    const { numTokens, maxSeqLen } = this.config;
    let rows: number[][];
    if (tokens instanceof tf.Tensor) {
      if (tokens.rank !== 2) {
        throw new RangeError(
          `${fn}: tokens must be [batch, length], got shape [${tokens.shape.join(', ')}]`,
        );
      }
      rows = tokens.arraySync() as number[][];
    } else {
      if (!Array.isArray(tokens) || !tokens.every(Array.isArray)) {
        throw new TypeError(`${fn}: tokens must be number[][] ([batch][length]) or a 2-D tensor`);
      }
      rows = tokens;
    }
    const N = rows[0]?.length ?? 0;
    if (rows.length === 0 || N === 0 || rows.some((r) => r.length !== N)) {
      throw new RangeError(
        `${fn}: tokens must be a non-empty [batch][length] array with rows of equal length`,
      );
    }
    if (N > maxSeqLen) {
      throw new RangeError(
        `${fn}: sequence length ${N} exceeds the model's maxSeqLen ${maxSeqLen}`,
      );
    }
    for (const [b, r] of rows.entries()) {
      for (const [n, t] of r.entries()) {
        if (!Number.isInteger(t) || t < 0 || t >= numTokens) {
          throw new RangeError(
            `${fn}: token id ${t} at [${b}, ${n}] is out of range [0, ${numTokens})`,
          );
        }
      }
    }
    return rows;
  }

  /** Heads, head size and the rotary rows of positions start … start + N − 1. */
  private layout(start: number, N: number): HeadLayout {
    const { heads, dimHead } = this.config;
    const table = this.weights.rotaryTable;
    const rotary =
      table === null || this.rotateMatrix === null
        ? null
        : { rows: tf.slice(table, [start, 0], [N, dimHead]), rotate: this.rotateMatrix };
    return { heads, dimHead, rotary };
  }

  private embed(tokens: tf.Tensor2D, start: number, flatIds: number[]): tf.Tensor {
    const N = tokens.shape[1];
    const h = embeddingLookup(this.weights.tokenEmbedding, tokens, flatIds);
    const pos = this.weights.positionEmbedding;
    return pos === null ? h : tf.add(h, tf.slice(pos, [start, 0], [N, this.config.dim]));
  }

  private head(h: tf.Tensor): tf.Tensor {
    const w = this.weights;
    const x = layerNorm(h, w.normGamma, w.normBeta);
    return w.outWeight === null
      ? dense(x, tf.transpose(w.tokenEmbedding) as tf.Tensor2D)
      : dense(x, w.outWeight, w.outBias);
  }

  /**
   * Logits [B, N, numTokens] for token ids [B][N] (N ≤ maxSeqLen).
   *
   * @param tokens - token ids [B][N] (N ≤ maxSeqLen)
   * @param opts - `{ mask }`: [B][N] padding mask, bidirectional models only
   */
  logits(
    tokens: number[][] | tf.Tensor2D,
    opts: { mask?: number[][] | tf.Tensor2D } = {},
  ): tf.Tensor3D {
    return this.forward('PerformerLM.logits', tokens, opts.mask, (h) =>
      this.head(h),
    ) as tf.Tensor3D;
  }

  /**
   * The final hidden states [B, N, dim] (after the last LayerNorm), for task heads.
   * `mask` [B][N]: 1 keep, 0 pad — padded positions are not attended to.
   *
   * @param tokens - token ids [B][N]
   * @param opts - `{ mask }`: [B][N] padding mask, bidirectional models only
   */
  hidden(
    tokens: number[][] | tf.Tensor2D,
    opts: { mask?: number[][] | tf.Tensor2D } = {},
  ): tf.Tensor3D {
    const w = this.weights;
    return this.forward('PerformerLM.hidden', tokens, opts.mask, (h) =>
      layerNorm(h, w.normGamma, w.normBeta),
    ) as tf.Tensor3D;
  }

  private forward(
    fn: string,
    tokens: number[][] | tf.Tensor2D,
    mask: number[][] | tf.Tensor2D | undefined,
    out: (h: tf.Tensor) => tf.Tensor,
    onAttentionInputs?: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => void,
  ): tf.Tensor {
    const rows = this.tokenRows(fn, tokens); // kept in JavaScript too, for the embedding's gradient
    const [B, N] = [rows.length, rows[0]!.length];
    let maskTensor: tf.Tensor2D | undefined;
    if (mask !== undefined) {
      const shape = mask instanceof tf.Tensor ? mask.shape : [mask.length, mask[0]?.length ?? 0];
      const ragged = !(mask instanceof tf.Tensor) && mask.some((r) => r.length !== N);
      if (shape.length !== 2 || shape[0] !== B || shape[1] !== N || ragged) {
        throw new RangeError(
          `${fn}: mask must have the shape of tokens [${B}, ${N}] (1 keep, 0 pad), got [${shape.join(', ')}]`,
        );
      }
      maskTensor = mask instanceof tf.Tensor ? mask : tf.tensor2d(mask, [B, N]);
    }
    const ids = tf.tensor2d(rows, [B, N], 'int32');
    const result = tf.tidy(() => {
      let h = this.embed(ids, 0, rows.flat());
      const layout = this.layout(0, N);
      this.weights.layers.forEach((l, i) => {
        h = transformerBlock(l, h, (a) =>
          multiHeadAttention(l, a, layout, (q, k, v) => {
            onAttentionInputs?.(q, k, v);
            return this.attend(i, q, k, v, maskTensor);
          }),
        );
      });
      return out(h);
    });
    ids.dispose();
    if (maskTensor !== undefined && maskTensor !== mask) maskTensor.dispose();
    return result;
  }

  /**
   * The attention inputs of every layer on `tokens` [B][N]: per layer q, k [B, heads, N, dimHead]
   * (rotary positions applied, as attention sees them) and v — what the model's attention actually
   * attends with, for studying real attention (e.g. an estimator's error against exact softmax on
   * a trained model's heads). The caller disposes the tensors.
   *
   * @param tokens - token ids [B][N]
   */
  attentionInputs(
    tokens: number[][] | tf.Tensor2D,
  ): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D }[] {
    const layers: { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
    try {
      const hidden = this.forward(
        'PerformerLM.attentionInputs',
        tokens,
        undefined,
        (h) => h,
        (q, k, v) => {
          layers.push({
            q: tf.keep(q) as tf.Tensor4D,
            k: tf.keep(k) as tf.Tensor4D,
            v: tf.keep(v) as tf.Tensor4D,
          });
        },
      );
      hidden.dispose();
    } catch (e) {
      for (const x of layers) tf.dispose([x.q, x.k, x.v]);
      throw e;
    }
    return layers;
  }

  /** Layer i's attention (the model's own kind: FAVOR or exact softmax). */
  private attend(
    i: number,
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    mask?: tf.Tensor2D,
  ): tf.Tensor {
    const { causal, denominatorEps } = this.config;
    return this.config.attention === 'softmax'
      ? softmaxAttention(q, k, v, { causal, mask })
      : favorAttention(q, k, v, {
          featureMap: this.featureMaps[i]!,
          causal,
          mask,
          denominatorEps: causal ? denominatorEps : 0,
        });
  }

  /**
   * One decoding step: the logits [B, numTokens] of `tokens` [B] at `position`, advancing the
   * per-layer recurrent states (constant work, whatever the position).
   */
  private step(states: CausalState[], tokens: number[], position: number): tf.Tensor2D {
    const ids = tf.tensor2d(
      tokens.map((t) => [t]),
      [tokens.length, 1],
      'int32',
    );
    const previous = [...states];
    const out = tf.tidy(() => {
      let h = this.embed(ids, position, tokens); // [B, 1, dim]
      const layout = this.layout(position, 1);
      this.weights.layers.forEach((l, i) => {
        // one token on the layer's recurrent state, which the step advances
        const step: Attend = (q, k, v) => {
          const { output, state } = favorCausalStep(states[i]!, q, k, v, {
            featureMap: this.featureMaps[i]!,
            denominatorEps: this.config.denominatorEps,
          });
          for (const t of [state.kv, state.ref, state.vSum]) tf.keep(t); // the state outlives this step
          states[i] = state;
          return output;
        };
        h = transformerBlock(l, h, (a) => multiHeadAttention(l, a, layout, step));
      });
      return tf.reshape(this.head(h), [tokens.length, this.config.numTokens]) as tf.Tensor2D;
    });
    for (const s of previous) s.dispose();
    ids.dispose();
    return out;
  }

  /**
   * Continues `prompt` by up to `maxNewTokens` tokens (never past maxSeqLen), one recurrent step
   * per token: the prompt is consumed token by token into each layer's causal state, then every
   * new token costs the same whatever the length so far.
   *
   * @param prompt - the prompt's token ids (at least one)
   * @param opts - `{ maxNewTokens, temperature, topK, seed, onToken }` (see GenerateOptions)
   */
  async generate(prompt: number[], opts: GenerateOptions): Promise<number[]> {
    const fn = 'PerformerLM.generate';
    this.assertRecurrent(fn);
    if (!Array.isArray(prompt) || prompt.length === 0) {
      throw new RangeError(`${fn}: prompt must be a non-empty array of token ids`);
    }
    this.tokenRows(fn, [prompt]); // validates ids and length
    const { maxNewTokens, temperature = 0, topK, seed = 0 } = opts ?? ({} as GenerateOptions);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
      throw new RangeError(
        `${fn}: maxNewTokens must be a non-negative integer, got ${String(maxNewTokens)}`,
      );
    }
    if (!(Number.isFinite(temperature) && temperature >= 0)) {
      throw new RangeError(
        `${fn}: temperature must be a finite number >= 0, got ${String(temperature)}`,
      );
    }
    if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1)) {
      throw new RangeError(`${fn}: topK must be a positive integer, got ${String(topK)}`);
    }
    const { maxSeqLen } = this.config;
    const states = this.decodingStates();
    const rng = createRng(seed);
    const out = [...prompt];
    try {
      let logits: Float32Array | null = null;
      for (let p = 0; p < prompt.length; p++) {
        const t = this.step(states, [prompt[p]!], p);
        logits = p === prompt.length - 1 ? ((await t.data()) as Float32Array) : null;
        t.dispose();
      }
      while (out.length - prompt.length < maxNewTokens && out.length < maxSeqLen) {
        const next = sampleLogits(logits!, temperature, topK, rng);
        out.push(next);
        opts.onToken?.(next, logits!);
        if (out.length - prompt.length >= maxNewTokens || out.length >= maxSeqLen) break;
        const t = this.step(states, [next], out.length - 1);
        logits = (await t.data()) as Float32Array;
        t.dispose();
      }
    } finally {
      for (const s of states) s.dispose();
    }
    return out;
  }

  /**
   * Logits of each token of `tokens` decoded one step at a time (for tests and streaming use).
   *
   * @param tokens - the next token of each sequence of the batch
   */
  async stepLogits(tokens: number[]): Promise<Float32Array[]> {
    this.assertRecurrent('PerformerLM.stepLogits');
    this.tokenRows('PerformerLM.stepLogits', [tokens]);
    const states = this.decodingStates();
    const all: Float32Array[] = [];
    try {
      for (let p = 0; p < tokens.length; p++) {
        const t = this.step(states, [tokens[p]!], p);
        all.push((await t.data()) as Float32Array);
        t.dispose();
      }
    } finally {
      for (const s of states) s.dispose();
    }
    return all;
  }

  /**
   * The model as a safetensors file: every weight (float32, our names: token_embedding,
   * layers.{l}.wq, …, layers.{l}.projection) and the config as metadata. `fromSafetensors` reads it
   * back to a model with the same logits.
   */
  toSafetensors(): Uint8Array {
    const tensors = new Map<string, { shape: number[]; data: Float32Array | Float64Array }>();
    const put = (name: string, t: tf.Tensor | null | undefined) => {
      if (t) tensors.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
    };
    const w = this.weights;
    put('token_embedding', w.tokenEmbedding);
    put('position_embedding', w.positionEmbedding);
    put('rotary_table', w.rotaryTable);
    w.layers.forEach((l, i) => {
      for (const [key, value] of Object.entries(l)) {
        if (key === 'projection') {
          const p = value as Matrix;
          // Float64, as sampled: a float32 copy would change the features slightly
          tensors.set(`layers.${i}.projection`, { shape: [p.rows, p.cols], data: p.data });
        } else {
          put(`layers.${i}.${key}`, value as tf.Tensor);
        }
      }
    });
    put('norm.gamma', w.normGamma);
    put('norm.beta', w.normBeta);
    put('out.weight', w.outWeight);
    put('out.bias', w.outBias);
    return writeSafetensors(tensors, { kernel_attention_config: JSON.stringify(this.config) });
  }

  /**
   * A model from `toSafetensors()` output; its weights are trainable variables. Errors name a
   * missing or misshapen tensor.
   *
   * @param bytes - a safetensors file written by save()
   */
  static fromSafetensors(bytes: Uint8Array): PerformerLM {
    const fn = 'PerformerLM.fromSafetensors';
    const meta = readSafetensorsMetadata(bytes);
    const raw = meta.kernel_attention_config;
    if (raw === undefined)
      throw new RangeError(
        `${fn}: the file has no kernel_attention_config metadata (not written by toSafetensors?)`,
      );
    const c = resolveConfig(fn, JSON.parse(raw) as PerformerLMConfig);
    const tensors = readSafetensors(bytes);
    const made: tf.Tensor[] = [];
    const get = (name: string, shape: number[], trainable = true): tf.Tensor => {
      const t = tensors.get(name);
      if (!t)
        throw new RangeError(`${fn}: missing tensor '${name}' (expected [${shape.join(', ')}])`);
      if (t.shape.join() !== shape.join()) {
        throw new RangeError(
          `${fn}: tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`,
        );
      }
      const value = tf.tensor(t.data as Float32Array, shape);
      const out = trainable ? tf.tidy(() => tf.variable(value)) : value;
      if (trainable) value.dispose();
      made.push(out);
      return out;
    };
    try {
      const inner = c.heads * c.dimHead;
      const ff = c.dim * c.ffMult;
      const layers = Array.from({ length: c.depth }, (_, i) => {
        const n = (k: string) => `layers.${i}.${k}`;
        const p = tensors.get(n('projection'));
        if (!p || p.shape.join() !== `${c.nbFeatures},${c.dimHead}`) {
          throw new RangeError(
            `${fn}: tensor '${n('projection')}' missing or not [${c.nbFeatures}, ${c.dimHead}]`,
          );
        }
        return {
          norm1Gamma: get(n('norm1Gamma'), [c.dim]),
          norm1Beta: get(n('norm1Beta'), [c.dim]),
          wq: get(n('wq'), [c.dim, inner]),
          wk: get(n('wk'), [c.dim, inner]),
          wv: get(n('wv'), [c.dim, inner]),
          ...(c.qkvBias
            ? { bq: get(n('bq'), [inner]), bk: get(n('bk'), [inner]), bv: get(n('bv'), [inner]) }
            : {}),
          wo: get(n('wo'), [inner, c.dim]),
          ...(c.attnOutBias ? { bo: get(n('bo'), [c.dim]) } : {}),
          projection: { rows: c.nbFeatures, cols: c.dimHead, data: Float64Array.from(p.data) },
          norm2Gamma: get(n('norm2Gamma'), [c.dim]),
          norm2Beta: get(n('norm2Beta'), [c.dim]),
          w1: get(n('w1'), [c.dim, ff]),
          b1: get(n('b1'), [ff]),
          w2: get(n('w2'), [ff, c.dim]),
          b2: get(n('b2'), [c.dim]),
        } as PerformerLayerWeights;
      });
      return new PerformerLM(c, {
        tokenEmbedding: get('token_embedding', [c.numTokens, c.dim]) as tf.Tensor2D,
        positionEmbedding: c.absolutePositions
          ? (get('position_embedding', [c.maxSeqLen, c.dim], false) as tf.Tensor2D)
          : null,
        rotaryTable: c.rotary
          ? (get('rotary_table', [c.maxSeqLen, c.dimHead], false) as tf.Tensor2D)
          : null,
        layers,
        normGamma: get('norm.gamma', [c.dim]) as tf.Tensor1D,
        normBeta: get('norm.beta', [c.dim]) as tf.Tensor1D,
        outWeight: c.tieEmbed ? null : (get('out.weight', [c.dim, c.numTokens]) as tf.Tensor2D),
        outBias: c.tieEmbed ? null : (get('out.bias', [c.numTokens]) as tf.Tensor1D),
      });
    } catch (e) {
      tf.dispose(made);
      throw e;
    }
  }

  /** One empty recurrent state per layer (batch 1). */
  private decodingStates(): CausalState[] {
    const { heads, dimHead } = this.config;
    return this.featureMaps.map((f) =>
      causalState({ batch: 1, heads, numFeatures: f.numFeatures, valueDim: dimHead }),
    );
  }

  private assertRecurrent(fn: string): void {
    if (!this.config.causal) {
      throw new Error(
        `${fn}: the model is bidirectional (causal: false); generation needs a causal model`,
      );
    }
    if (this.config.attention !== 'favor') {
      throw new Error(
        `${fn}: recurrent decoding needs FAVOR+ attention, this model uses '${this.config.attention}' (convert with withAttention('favor'))`,
      );
    }
  }

  /**
   * The same weights with another attention: 'softmax' gives the plain Transformer of the same
   * shapes, 'favor' the Performer (the paper's backwards compatibility: a softmax checkpoint runs
   * as a Performer, close on short inputs, and a short fine-tune recovers the loss). The two
   * models share their weight tensors: the new one's dispose() leaves them to this one.
   *
   * @param attention - 'favor' or 'softmax'
   */
  withAttention(attention: 'favor' | 'softmax'): PerformerLM {
    return new PerformerLM({ ...this.config, attention }, this.weights, { ownsWeights: false });
  }

  /**
   * The same weights with FAVOR attention through your own feature map: `featureMap(layer,
   * projection)` gives layer `layer`'s map (the layer's current projection [nbFeatures, dimHead]
   * is there to use or to ignore; it is called again after setProjections). The models share
   * their weight tensors, as with withAttention; the new model's dispose() frees the maps it made.
   *
   * @param featureMap - a FeatureMap for every layer, or a function of the layer index that returns one
   *
   * @example
   * ```ts
   * import { generalized } from '@kernel-attention/feature-maps';
   * import { PerformerLM } from '@kernel-attention/performer';
   * const model = PerformerLM.create({ numTokens: 8, maxSeqLen: 16, dim: 16, depth: 2, heads: 2, nbFeatures: 8 });
   * const relu = model.withFeatureMap((layer, projection) => generalized({ fn: 'relu', projection }));
   * relu.logits([[1, 2, 3]]).print();
   * relu.dispose();
   * model.dispose();
   * ```
   */
  withFeatureMap(featureMap: LayerFeatureMap): PerformerLM {
    if (typeof featureMap !== 'function') {
      throw new TypeError(
        `PerformerLM.withFeatureMap: featureMap must be a function (layer, projection) => FeatureMap, got ${featureMap === null ? 'null' : typeof featureMap}`,
      );
    }
    return new PerformerLM({ ...this.config, attention: 'favor' }, this.weights, {
      ownsWeights: false,
      featureMap,
    });
  }

  /** The FAVOR+ projections in force, one [nbFeatures, dimHead] per layer. */
  get projections(): Matrix[] {
    return this.weights.layers.map((l) => l.projection);
  }

  /**
   * Replaces every layer's FAVOR+ projection (feature redraw, or fixing them to given matrices).
   * Projections are not trained; each is uploaded once per backend when first used.
   *
   * @param projections - one projection [nbFeatures, dimHead] per layer
   */
  setProjections(projections: Matrix[]): void {
    const fn = 'PerformerLM.setProjections';
    const { depth, nbFeatures, dimHead } = this.config;
    if (!Array.isArray(projections) || projections.length !== depth) {
      throw new RangeError(
        `${fn}: need ${depth} projections (one per layer), got ${String(projections?.length)}`,
      );
    }
    projections.forEach((p, i) => {
      if (p.rows !== nbFeatures || p.cols !== dimHead) {
        throw new RangeError(
          `${fn}: projection ${i} must be ${nbFeatures}×${dimHead}, got ${p.rows}×${p.cols}`,
        );
      }
    });
    for (const f of this.featureMaps) f.dispose?.();
    projections.forEach((p, i) => {
      this.weights.layers[i]!.projection = p;
    });
    this.featureMaps = projections.map((p, i) => this.featureMapOf(p, i));
  }

  /** The feature map of one layer: the configured kernel, eps and stabilizer. */
  private featureMapOf(projection: Matrix, layer: number): FeatureMap & { dispose?(): void } {
    if (this.customFeatureMap !== null) {
      const map = this.customFeatureMap(layer, projection);
      if (typeof map !== 'object' || map === null || typeof map.features !== 'function') {
        throw new TypeError(
          `PerformerLM: the featureMap function must return a FeatureMap (with features(x, role)) for layer ${layer}, got ${map === null ? 'null' : typeof map}`,
        );
      }
      return map;
    }
    const { kernel, featureEps: eps } = this.config;
    if (kernel === 'relu') return generalized({ fn: 'relu', projection });
    if (kernel === 'hyperbolic') return hyperbolicSoftmax({ projection, eps });
    return positiveSoftmax({
      projection,
      eps,
      ...(this.config.stabilizer === 'performer-pytorch'
        ? { compatibility: 'performer-pytorch' as const }
        : {}),
    });
  }

  /** The weights an optimizer updates (tf.Variables; tensors loaded as constants are left out). */
  trainableVariables(): tf.Variable[] {
    return this.weightTensors().filter(
      (t): t is tf.Variable => t instanceof tf.Variable && t.trainable,
    );
  }

  /** Every weight tensor (the projections are Float64 matrices, not tensors). */
  private weightTensors(): tf.Tensor[] {
    const w = this.weights;
    const all: (tf.Tensor | null | undefined)[] = [
      w.tokenEmbedding,
      w.positionEmbedding,
      w.rotaryTable,
      w.normGamma,
      w.normBeta,
      w.outWeight,
      w.outBias,
    ];
    for (const l of w.layers) {
      const { projection: _, ...rest } = l;
      all.push(...(Object.values(rest) as tf.Tensor[]));
    }
    return all.filter((t): t is tf.Tensor => t != null);
  }

  /**
   * Mean cross-entropy of `targets` [B][N] given `inputs` [B][N] (next-token prediction: targets
   * are usually the inputs shifted by one), over the positions where `weights` [B][N] (default
   * all 1) is nonzero, weighted by it.
   *
   * @param inputs - token ids [B][N]
   * @param targets - the next token of each position [B][N]
   * @param weights - per-position loss weights [B][N] (optional)
   */
  loss(inputs: number[][], targets: number[][], weights?: number[][]): tf.Scalar {
    const fn = 'PerformerLM.loss';
    const [B, N] = [inputs.length, inputs[0]?.length ?? 0];
    const same = (x: number[][] | undefined) =>
      !x || (x.length === B && x.every((r) => r.length === N));
    if (!same(targets) || !same(weights)) {
      throw new RangeError(`${fn}: targets and weights must have the shape of inputs [${B}][${N}]`);
    }
    this.tokenRows(fn, targets); // validates the target ids
    return tf.tidy(() => {
      const logits = this.logits(inputs);
      const labels = tf.oneHot(tf.tensor2d(targets, [B, N], 'int32'), this.config.numTokens);
      const w = weights ? tf.tensor2d(weights, [B, N]) : tf.ones([B, N]);
      // log-softmax as x − logSumExp(x): tfjs's logSoftmax is a custom gradient whose saved clones
      // trip the wasm backend's test-mode leak check
      const nll = tf.neg(
        tf.sum(tf.mul(labels, tf.sub(logits, tf.logSumExp(logits, -1, true))), -1),
      ); // [B, N]
      return tf.div(tf.sum(tf.mul(nll, w)), tf.maximum(tf.sum(w), 1e-12)) as tf.Scalar;
    });
  }

  dispose(): void {
    for (const f of this.featureMaps) f.dispose?.();
    this.rotateMatrix?.dispose();
    if (this.ownsWeights) tf.dispose(this.weightTensors());
  }
}

/**
 * Layer `layer`'s feature map, given its projection [nbFeatures, dimHead] (see withFeatureMap).
 *
 * @param layer - the layer index, from 0
 * @param projection - the layer's random projection [nbFeatures, dimHead] (redrawn in training)
 */
export type LayerFeatureMap = (
  layer: number,
  projection: Matrix,
) => FeatureMap & { dispose?(): void };

/** A trainable variable from an initializer, without keeping the initial tensor alive. */
function variable(init: () => tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(init()));
}

/**
 * table[ids] with a gradient for the table that needs no UnsortedSegmentSum (tf.gather's gradient
 * needs that kernel, which tfjs-wasm lacks): ∂table = oneHot(ids)ᵀ · dy, the one-hot built from
 * the ids' JavaScript values when the backward pass runs.
 */
function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor2D, flatIds: number[]): tf.Tensor3D {
  const [V, dim] = table.shape;
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor2D;
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor) =>
        tf.tidy(() =>
          tf.matMul(
            tf.oneHot(tf.tensor1d(flatIds, 'int32'), V),
            tf.reshape(dy, [flatIds.length, dim]),
            true,
            false,
          ),
        ),
    };
  });
  return lookup(table) as tf.Tensor3D;
}
