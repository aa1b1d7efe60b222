import type { Matrix } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import type { PerformerLMConfig } from './models/performer-lm/config.js';
import { type PerformerLayerWeights, PerformerLM } from './models/performer-lm/performer-lm.js';
import { readSafetensors, type SafetensorsTensor } from './safetensors.js';

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
  const tensors = readSafetensors(bytes);
  const dimHead = c.dimHead!;
  const inner = c.heads * dimHead;
  const ff = c.dim * c.ffMult!;
  const used = new Set<string>();
  const get = (name: string, shape: number[]): SafetensorsTensor => {
    const t = tensors.get(name);
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
    used.add(name);
    return t;
  };
  const vec = (name: string, n: number) => tf.tensor1d(get(name, [n]).data as Float32Array);
  const mat = (name: string, rows: number, cols: number) =>
    tf.tensor2d(get(name, [rows, cols]).data as Float32Array, [rows, cols]);
  /** A PyTorch Linear weight [out, in] as our [in, out]. */
  const linear = (name: string, out: number, inp: number) =>
    tf.tidy(() => tf.transpose(mat(name, out, inp))) as tf.Tensor2D;
  const made: tf.Tensor[] = [];
  const track = <T extends tf.Tensor>(t: T) => {
    made.push(t);
    return t;
  };
  try {
    const layers: PerformerLayerWeights[] = [];
    for (let l = 0; l < c.depth; l++) {
      const a = `performer.net.layers.${l}.0`;
      const f = `performer.net.layers.${l}.1`;
      const proj = get(`${a}.fn.fast_attention.projection_matrix`, [c.nbFeatures, dimHead]);
      const projection: Matrix = {
        rows: c.nbFeatures,
        cols: dimHead,
        data: Float64Array.from(proj.data),
      };
      layers.push({
        norm1Gamma: track(vec(`${a}.norm.weight`, c.dim)),
        norm1Beta: track(vec(`${a}.norm.bias`, c.dim)),
        wq: track(linear(`${a}.fn.to_q.weight`, inner, c.dim)),
        wk: track(linear(`${a}.fn.to_k.weight`, inner, c.dim)),
        wv: track(linear(`${a}.fn.to_v.weight`, inner, c.dim)),
        ...(c.qkvBias
          ? {
              bq: track(vec(`${a}.fn.to_q.bias`, inner)),
              bk: track(vec(`${a}.fn.to_k.bias`, inner)),
              bv: track(vec(`${a}.fn.to_v.bias`, inner)),
            }
          : {}),
        wo: track(linear(`${a}.fn.to_out.weight`, c.dim, inner)),
        ...(c.attnOutBias ? { bo: track(vec(`${a}.fn.to_out.bias`, c.dim)) } : {}),
        projection,
        norm2Gamma: track(vec(`${f}.norm.weight`, c.dim)),
        norm2Beta: track(vec(`${f}.norm.bias`, c.dim)),
        w1: track(linear(`${f}.fn.fn.w1.weight`, ff, c.dim)),
        b1: track(vec(`${f}.fn.fn.w1.bias`, ff)),
        w2: track(linear(`${f}.fn.fn.w2.weight`, c.dim, ff)),
        b2: track(vec(`${f}.fn.fn.w2.bias`, c.dim)),
      });
    }
    const posName = tensors.has('pos_emb.emb') ? 'pos_emb.emb' : 'pos_emb.emb.weight';
    const model = new PerformerLM(c, {
      tokenEmbedding: track(mat('token_emb.weight', c.numTokens, c.dim)),
      positionEmbedding: track(mat(posName, c.maxSeqLen, c.dim)),
      rotaryTable: c.rotary ? track(mat('layer_pos_emb.emb', c.maxSeqLen, dimHead)) : null,
      layers,
      normGamma: track(vec('norm.weight', c.dim)),
      normBeta: track(vec('norm.bias', c.dim)),
      outWeight: c.tieEmbed ? null : track(linear('to_out.weight', c.numTokens, c.dim)),
      outBias: c.tieEmbed ? null : track(vec('to_out.bias', c.numTokens)),
    });
    const ignored = (n: string) => n.startsWith('performer.proj_updater.');
    const extra = [...tensors.keys()].filter((n) => !used.has(n) && !ignored(n));
    if (extra.length > 0) {
      model.dispose();
      made.length = 0;
      throw new RangeError(
        `${fn}: the checkpoint has tensors this config does not use (${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}): does the config match the checkpoint?`,
      );
    }
    return model;
  } catch (e) {
    tf.dispose(made);
    throw e;
  }
}
