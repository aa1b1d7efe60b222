import { describeValue } from '@kernel-attention/feature-maps';
import type { Matrix } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import type { PerformerLMConfig } from './models/performer-lm/config.js';
import { type PerformerLayerWeights, PerformerLM } from './models/performer-lm/performer-lm.js';
import { readSafetensors, type SafetensorsTensor, writeSafetensors } from './safetensors.js';

/**
 * performer-pytorch (lucidrains) PerformerLM constructor arguments we support, and the options
 * whose non-default values change the architecture (rejected with a clear error).
 */
const UNSUPPORTED: [string, unknown][] = [
  ['local_attn_heads', 0],
  ['reversible', false],
  ['ff_glu', false],
  ['generalized_attention', false],
  ['use_scalenorm', false],
  ['use_rezero', false],
  ['cross_attend', false],
  ['no_projection', false],
  ['axial_position_emb', false],
  ['shift_tokens', false],
];

/** The dtypes a weight may have (all decoded to float32). */
const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64'];

/**
 * Our config from performer-pytorch's (snake_case) PerformerLM arguments.
 *
 * @param config - the keyword arguments of performer-pytorch's PerformerLM(...) (snake_case)
 */
export function configFromPytorch(config: Record<string, unknown>): PerformerLMConfig {
  const fn = 'loadPerformerPytorch';
  if (typeof config !== 'object' || config === null)
    throw new TypeError(`${fn}: config is required`);
  for (const [key, ok] of UNSUPPORTED) {
    const v = config[key];
    const isOk =
      v === undefined || v === null || v === ok || (key === 'local_attn_heads' && v === 0);
    if (!isOk) {
      throw new RangeError(
        `${fn}: config.${key} = ${JSON.stringify(v)} is not supported (only ${JSON.stringify(ok)})`,
      );
    }
  }
  const describe = (v: unknown) =>
    typeof v === 'string'
      ? `the string ${JSON.stringify(v)}`
      : v === null
        ? 'null'
        : Array.isArray(v)
          ? 'an array'
          : typeof v === 'object'
            ? 'an object'
            : String(v);
  /** A positive integer (sizes, counts). */
  const num = (key: string, fallback?: number) => {
    const v = config[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `${fn}: config.${key} must be a positive integer, got ${describe(config[key])}`,
      );
    }
    return v;
  };
  /** true or false (a string such as "false" is an error, not truthy). */
  const bool = (key: string, fallback: boolean) => {
    const v = config[key] ?? fallback;
    if (typeof v !== 'boolean') {
      throw new TypeError(
        `${fn}: config.${key} must be true or false, got ${describe(config[key])}`,
      );
    }
    return v;
  };
  const dim = num('dim');
  const heads = num('heads', 8);
  const dimHead = num('dim_head', 64);
  return {
    numTokens: num('num_tokens'),
    maxSeqLen: num('max_seq_len'),
    dim,
    depth: num('depth'),
    heads,
    dimHead,
    // performer-pytorch's default: int(dim_head · ln(dim_head))
    nbFeatures: num('nb_features', Math.floor(dimHead * Math.log(dimHead))),
    ffMult: num('ff_mult', 4),
    causal: bool('causal', false),
    rotary: bool('rotary_position_emb', true),
    absolutePositions: true,
    tieEmbed: bool('tie_embed', false),
    qkvBias: bool('qkv_bias', false),
    attnOutBias: bool('attn_out_bias', true),
    featureEps: 1e-4,
    stabilizer: 'performer-pytorch', // its key stabilizer: the max over the whole sequence
    denominatorEps: 1e-6, // causal_linear_attention's eps on the key prefix sums
  };
}

/**
 * Loads a checkpoint of performer-pytorch's `PerformerLM` saved as safetensors (its state_dict)
 * with the constructor arguments it was built with, so that the model gives the same logits.
 * Parameter names (Linear weights [out, in] are transposed to our [in, out]):
 *
 * | performer-pytorch | ours |
 * |---|---|
 * | token_emb.weight [V, dim] | tokenEmbedding |
 * | pos_emb.emb [maxSeqLen, dim] (rotary models: fixed sinusoids) or pos_emb.emb.weight (learned) | positionEmbedding |
 * | layer_pos_emb.emb [maxSeqLen, dimHead] | rotaryTable |
 * | performer.net.layers.{l}.0.norm.{weight,bias} | layers[l].norm1Gamma / norm1Beta |
 * | performer.net.layers.{l}.0.fn.to_{q,k,v}.weight (and .bias with qkv_bias) | layers[l].wq/wk/wv (bq/bk/bv) |
 * | performer.net.layers.{l}.0.fn.to_out.{weight,bias} | layers[l].wo / bo |
 * | performer.net.layers.{l}.0.fn.fast_attention.projection_matrix [m, dimHead] | layers[l].projection |
 * | performer.net.layers.{l}.1.norm.{weight,bias} | layers[l].norm2Gamma / norm2Beta |
 * | performer.net.layers.{l}.1.fn.fn.w1.{weight,bias}, …w2… | layers[l].w1/b1, w2/b2 |
 * | norm.{weight,bias} | normGamma / normBeta |
 * | to_out.{weight,bias} (absent with tie_embed) | outWeight / outBias |
 *
 * `performer.proj_updater.instance.*` duplicates `performer.net.*` and
 * `performer.proj_updater.calls_since_last_redraw` is a counter; both are ignored.
 *
 * @param bytes - the state_dict saved as safetensors
 * @param config - the PerformerLM(...) keyword arguments it was built with
 */
export function loadPerformerPytorch(
  bytes: Uint8Array,
  config: Record<string, unknown>,
): PerformerLM {
  const fn = 'loadPerformerPytorch';
  const c = configFromPytorch(config);
  const r = new CheckpointReader(fn, readSafetensors(bytes));
  try {
    const layers = Array.from({ length: c.depth }, (_, l) => readLayer(r, c, l));
    const posName = r.has('pos_emb.emb') ? 'pos_emb.emb' : 'pos_emb.emb.weight';
    const model = new PerformerLM(c, {
      tokenEmbedding: r.mat('token_emb.weight', c.numTokens, c.dim),
      positionEmbedding: r.mat(posName, c.maxSeqLen, c.dim),
      rotaryTable: c.rotary ? r.mat('layer_pos_emb.emb', c.maxSeqLen, c.dimHead!) : null,
      layers,
      normGamma: r.vec('norm.weight', c.dim),
      normBeta: r.vec('norm.bias', c.dim),
      outWeight: c.tieEmbed ? null : r.linear('to_out.weight', c.numTokens, c.dim),
      outBias: c.tieEmbed ? null : r.vec('to_out.bias', c.numTokens),
    });
    const extra = r.unused((n) => n.startsWith('performer.proj_updater.'));
    if (extra.length > 0) {
      model.dispose();
      r.made.length = 0;
      throw new RangeError(
        `${fn}: the checkpoint has tensors this config does not use (${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}): does the config match the checkpoint?`,
      );
    }
    return model;
  } catch (e) {
    tf.dispose(r.made);
    throw e;
  }
}

/**
 * Reads a checkpoint's tensors by name with the shape the config needs, as float32 tensors it
 * tracks (freed by the caller on failure), and records which names were used.
 */
class CheckpointReader {
  readonly made: tf.Tensor[] = [];
  private readonly used = new Set<string>();

  constructor(
    private readonly fn: string,
    private readonly tensors: Map<string, SafetensorsTensor>,
  ) {}

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The raw tensor, checked: present, floating point, of `shape`. */
  get(name: string, shape: number[]): SafetensorsTensor {
    const { fn } = this;
    const t = this.tensors.get(name);
    if (!t)
      throw new RangeError(
        `${fn}: the checkpoint has no tensor '${name}' (expected shape [${shape.join(', ')}])`,
      );
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      throw new TypeError(
        `${fn}: tensor '${name}' has dtype ${t.dtype}; weights must be floating point (${FLOAT_DTYPES.join(', ')})`,
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new RangeError(
        `${fn}: tensor '${name}' has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`,
      );
    }
    this.used.add(name);
    return t;
  }

  private track<T extends tf.Tensor>(t: T): T {
    this.made.push(t);
    return t;
  }

  vec(name: string, n: number): tf.Tensor1D {
    return this.track(tf.tensor1d(this.get(name, [n]).data as Float32Array));
  }

  mat(name: string, rows: number, cols: number): tf.Tensor2D {
    return this.track(tf.tensor2d(this.get(name, [rows, cols]).data as Float32Array, [rows, cols]));
  }

  /** A PyTorch Linear weight [out, in] as our [in, out]. */
  linear(name: string, out: number, inp: number): tf.Tensor2D {
    const data = this.get(name, [out, inp]).data as Float32Array;
    return this.track(tf.tidy(() => tf.transpose(tf.tensor2d(data, [out, inp]))));
  }

  /** Names never read, except the ignored ones. */
  unused(ignored: (name: string) => boolean): string[] {
    return [...this.tensors.keys()].filter((n) => !this.used.has(n) && !ignored(n));
  }
}

/** Layer l's weights from performer-pytorch's names (see the table of loadPerformerPytorch). */
function readLayer(r: CheckpointReader, c: PerformerLMConfig, l: number): PerformerLayerWeights {
  const dimHead = c.dimHead!;
  const inner = c.heads * dimHead;
  const ff = c.dim * c.ffMult!;
  const a = `performer.net.layers.${l}.0`;
  const f = `performer.net.layers.${l}.1`;
  const proj = r.get(`${a}.fn.fast_attention.projection_matrix`, [c.nbFeatures, dimHead]);
  const projection: Matrix = {
    rows: c.nbFeatures,
    cols: dimHead,
    data: Float64Array.from(proj.data),
  };
  return {
    norm1Gamma: r.vec(`${a}.norm.weight`, c.dim),
    norm1Beta: r.vec(`${a}.norm.bias`, c.dim),
    wq: r.linear(`${a}.fn.to_q.weight`, inner, c.dim),
    wk: r.linear(`${a}.fn.to_k.weight`, inner, c.dim),
    wv: r.linear(`${a}.fn.to_v.weight`, inner, c.dim),
    ...(c.qkvBias
      ? {
          bq: r.vec(`${a}.fn.to_q.bias`, inner),
          bk: r.vec(`${a}.fn.to_k.bias`, inner),
          bv: r.vec(`${a}.fn.to_v.bias`, inner),
        }
      : {}),
    wo: r.linear(`${a}.fn.to_out.weight`, c.dim, inner),
    ...(c.attnOutBias ? { bo: r.vec(`${a}.fn.to_out.bias`, c.dim) } : {}),
    projection,
    norm2Gamma: r.vec(`${f}.norm.weight`, c.dim),
    norm2Beta: r.vec(`${f}.norm.bias`, c.dim),
    w1: r.linear(`${f}.fn.fn.w1.weight`, ff, c.dim),
    b1: r.vec(`${f}.fn.fn.w1.bias`, ff),
    w2: r.linear(`${f}.fn.fn.w2.weight`, c.dim, ff),
    b2: r.vec(`${f}.fn.fn.w2.bias`, c.dim),
  };
}

/** What `toPerformerPytorch` returns. */
export interface PerformerPytorchExport {
  /** The state_dict as safetensors: `safetensors.torch.load_file` reads it. */
  safetensors: Uint8Array;
  /** performer-pytorch's `PerformerLM(**config)` keyword arguments (snake_case, JSON-ready). */
  config: Record<string, unknown>;
  /**
   * Where performer-pytorch will compute something slightly different from this model (its
   * sequence-wide key stabilizer, its fixed eps values); empty when it computes the same logits.
   */
  differences: string[];
}

/**
 * Exports a PerformerLM as performer-pytorch (lucidrains, v1.1.x) would save it: its
 * `state_dict` under its names and shapes (the table of `loadPerformerPytorch`; Linear weights
 * transposed back to [out, in]; `performer.proj_updater.instance.*` written as the aliases the
 * state_dict lists, so a strict `load_state_dict` accepts the file) and the `PerformerLM(...)`
 * keyword arguments that build the matching model. A model trained or fine-tuned here continues
 * in PyTorch:
 *
 * ```python
 * from performer_pytorch import PerformerLM
 * from safetensors.torch import load_file
 * model = PerformerLM(**config)
 * model.load_state_dict(load_file('model.safetensors'))
 * ```
 *
 * `loadPerformerPytorch(safetensors, config)` reads it back; for a model that came from
 * performer-pytorch the round trip gives identical logits. performer-pytorch has only FAVOR+
 * with positive features: softmax-attention, hyperbolic, ReLU and custom-feature models are
 * rejected. Its stabilizer and eps values are fixed (a key maximum over the whole sequence,
 * eps 1e-4 on the features, 1e-6 on the causal key sums) and `differences` lists where this
 * model's differ. How much that moves the logits depends on the model: little where queries and
 * keys are short, a lot where they are long — the pretrained fortunes model (causal, exact
 * stabilizers) agrees with itself in performer-pytorch on the most likely next character at only
 * about a third of the positions, so fine-tune there first; a model trained here with
 * `stabilizer: 'performer-pytorch'` and `denominatorEps: 1e-6` gives the same logits there.
 *
 * @param model - the PerformerLM to export
 */
export function toPerformerPytorch(model: PerformerLM): PerformerPytorchExport {
  const differences = exportDifferences('toPerformerPytorch', model);
  return {
    safetensors: writeSafetensors(pytorchStateDict(model), {
      format: 'pt',
      source: 'kernel-attention toPerformerPytorch (performer-pytorch PerformerLM state_dict)',
    }),
    config: pytorchConfig(model.config),
    differences,
  };
}

/** Refuses what performer-pytorch cannot represent; lists where it will compute differently. */
function exportDifferences(fn: string, model: PerformerLM): string[] {
  if (!(model instanceof PerformerLM)) {
    throw new TypeError(`${fn}: model must be a PerformerLM, got ${describeValue(model)}`);
  }
  const c = model.config;
  if (c.attention !== 'favor') {
    throw new RangeError(
      `${fn}: performer-pytorch has FAVOR+ attention only; this model uses attention '${c.attention}' (convert it with withAttention('favor') first)`,
    );
  }
  if (c.kernel !== 'positive') {
    throw new RangeError(
      `${fn}: performer-pytorch's softmax attention uses positive features; this model's kernel is '${c.kernel}'`,
    );
  }
  if (model.usesCustomFeatureMap) {
    throw new RangeError(
      `${fn}: this model uses a custom feature map (withFeatureMap), which performer-pytorch cannot represent`,
    );
  }
  const differences: string[] = [];
  if (c.stabilizer !== 'performer-pytorch') {
    differences.push(
      "key stabilizer: performer-pytorch takes the key maximum over the whole sequence (this model: 'exact', over the keys each query sees); with its feature eps the causal attention differs — little where queries and keys are short, a lot where they are long, as in trained heads: compare the logits before relying on them",
    );
  }
  if (c.featureEps !== 1e-4) {
    differences.push(`feature eps: performer-pytorch adds 1e-4 (this model: ${c.featureEps})`);
  }
  if (c.causal && c.denominatorEps !== 1e-6) {
    differences.push(
      `causal denominator eps: performer-pytorch adds 1e-6 to the key sums (this model: ${c.denominatorEps})`,
    );
  }
  return differences;
}

type Entry = { shape: number[]; data: Float32Array };
const entry = (t: tf.Tensor): Entry => ({
  shape: [...t.shape],
  data: Float32Array.from(t.dataSync()),
});
/** Our [in, out] as PyTorch's Linear [out, in]. */
const linear = (t: tf.Tensor2D): Entry => tf.tidy(() => entry(tf.transpose(t)));

/** One layer's tensors under performer-pytorch's names (relative to its `layers` module). */
function layerStateDict(l: PerformerLayerWeights, i: number): Map<string, Entry> {
  const layers = new Map<string, Entry>();
  const a = `layers.${i}.0`;
  const f = `layers.${i}.1`;
  const optional = (name: string, t: tf.Tensor | undefined) => {
    if (t) layers.set(name, entry(t));
  };
  layers.set(`${a}.norm.weight`, entry(l.norm1Gamma));
  layers.set(`${a}.norm.bias`, entry(l.norm1Beta));
  layers.set(`${a}.fn.fast_attention.projection_matrix`, {
    shape: [l.projection.rows, l.projection.cols],
    data: Float32Array.from(l.projection.data),
  });
  layers.set(`${a}.fn.to_q.weight`, linear(l.wq));
  optional(`${a}.fn.to_q.bias`, l.bq);
  layers.set(`${a}.fn.to_k.weight`, linear(l.wk));
  optional(`${a}.fn.to_k.bias`, l.bk);
  layers.set(`${a}.fn.to_v.weight`, linear(l.wv));
  optional(`${a}.fn.to_v.bias`, l.bv);
  layers.set(`${a}.fn.to_out.weight`, linear(l.wo));
  optional(`${a}.fn.to_out.bias`, l.bo);
  layers.set(`${f}.norm.weight`, entry(l.norm2Gamma));
  layers.set(`${f}.norm.bias`, entry(l.norm2Beta));
  layers.set(`${f}.fn.fn.w1.weight`, linear(l.w1));
  layers.set(`${f}.fn.fn.w1.bias`, entry(l.b1));
  layers.set(`${f}.fn.fn.w2.weight`, linear(l.w2));
  layers.set(`${f}.fn.fn.w2.bias`, entry(l.b2));
  return layers;
}

/** The model's state_dict as performer-pytorch lists it (names, shapes, order). */
function pytorchStateDict(model: PerformerLM): Map<string, Entry> {
  const c = model.config;
  const w = model.weights;
  const all = new Map<string, Entry>();
  all.set('token_emb.weight', entry(w.tokenEmbedding));
  // performer-pytorch always adds an absolute embedding: fixed sinusoids (a buffer) with rotary
  // positions, a learned table otherwise; a model without one exports zeros (the same sums)
  all.set(
    c.rotary ? 'pos_emb.emb' : 'pos_emb.emb.weight',
    w.positionEmbedding
      ? entry(w.positionEmbedding)
      : { shape: [c.maxSeqLen, c.dim], data: new Float32Array(c.maxSeqLen * c.dim) },
  );
  if (c.rotary && w.rotaryTable) all.set('layer_pos_emb.emb', entry(w.rotaryTable));
  const layers = new Map(w.layers.flatMap((l, i) => [...layerStateDict(l, i)]));
  for (const [name, t] of layers) all.set(`performer.net.${name}`, t);
  all.set('performer.proj_updater.calls_since_last_redraw', {
    shape: [],
    data: new Float32Array(1),
  });
  // the state_dict lists the same layers again under the projection updater's reference
  for (const [name, t] of layers) all.set(`performer.proj_updater.instance.${name}`, t);
  all.set('norm.weight', entry(w.normGamma));
  all.set('norm.bias', entry(w.normBeta));
  if (w.outWeight) all.set('to_out.weight', linear(w.outWeight));
  if (w.outBias) all.set('to_out.bias', entry(w.outBias));
  return all;
}

/** performer-pytorch's PerformerLM(...) arguments for our config. */
function pytorchConfig(c: PerformerLM['config']): Record<string, unknown> {
  return {
    num_tokens: c.numTokens,
    max_seq_len: c.maxSeqLen,
    dim: c.dim,
    depth: c.depth,
    heads: c.heads,
    dim_head: c.dimHead,
    nb_features: c.nbFeatures,
    ff_mult: c.ffMult,
    causal: c.causal,
    rotary_position_emb: c.rotary,
    tie_embed: c.tieEmbed,
    qkv_bias: c.qkvBias,
    attn_out_bias: c.attnOutBias,
    // the features this model was trained with: performer-pytorch must not redraw them
    feature_redraw_interval: null,
  };
}
