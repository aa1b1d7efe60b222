/**
 * The one pre-norm transformer block of the zoo, as functions of its weights: PerformerLM (its
 * whole-sequence forward and its one-token decoding step), PerformerEncoder and the tfjs-layers
 * layers all run these, with their attention — the one part that differs — passed in:
 * multiHeadAttention with an attention mechanism (core's ops, the recurrent decoding step, or a
 * layer's registry mechanism).
 *
 *   h = x + W_o·merge(attend(q, k, v)),  q, k, v = split(LN₁(x)·W_{q,k,v}) (rotary on q, k)
 *   out = h + W₂·GELU(W₁·LN₂(h) + b₁) + b₂
 */
import * as tf from '@tensorflow/tfjs-core';
import { applyRotary, dense, gelu, layerNorm } from '../ops.js';

/** The attention projections of a block; Linear weights as [in, out] (x·W). */
export interface AttentionProjections {
  wq: tf.Tensor2D;
  wk: tf.Tensor2D;
  wv: tf.Tensor2D;
  bq?: tf.Tensor1D;
  bk?: tf.Tensor1D;
  bv?: tf.Tensor1D;
  wo: tf.Tensor2D;
  bo?: tf.Tensor1D;
}

/** A block's own weights: the two LayerNorms and the feed-forward (its attention brings its own). */
export interface BlockWeights {
  norm1Gamma: tf.Tensor1D;
  norm1Beta: tf.Tensor1D;
  norm2Gamma: tf.Tensor1D;
  norm2Beta: tf.Tensor1D;
  w1: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
}

/** Rotary positions for one call: the sinusoid rows of its positions [N, dh] and R = rotateEveryTwo(dh). */
export interface RotaryRows {
  rows: tf.Tensor;
  rotate: tf.Tensor;
}

/** The heads' sizes and positions of one call. */
export interface HeadLayout {
  heads: number;
  dimHead: number;
  /** Rotary positions on q and k, or null for none. */
  rotary: RotaryRows | null;
}

/**
 * An attention mechanism: q, k, v [B, H, N, dh] → [B, H, N, dh].
 *
 * @param q - queries [B, H, N, dh] (rotary positions applied)
 * @param k - keys [B, H, N, dh] (rotary positions applied)
 * @param v - values [B, H, N, dh]
 */
export type Attend = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor;

/**
 * The attention sublayer of a block: the normalised input [B, N, dim] → [B, N, dim].
 *
 * @param x - the block's input after its first LayerNorm [B, N, dim]
 */
export type AttentionSublayer = (x: tf.Tensor) => tf.Tensor;

/**
 * x [B, N, dim] → q, k, v [B, H, N, dh] (rotary positions applied to q and k).
 *
 * @param w - the attention projections
 * @param x - the normalised input [B, N, dim]
 * @param layout - heads, head size and rotary rows
 */
export function projectQkv(
  w: AttentionProjections,
  x: tf.Tensor,
  layout: HeadLayout,
): { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor } {
  const [B, N] = x.shape as [number, number];
  const { heads: H, dimHead: dh, rotary } = layout;
  const split = (weight: tf.Tensor2D, bias?: tf.Tensor1D) =>
    tf.transpose(tf.reshape(dense(x, weight, bias), [B, N, H, dh]), [0, 2, 1, 3]);
  const rot = (t: tf.Tensor) => (rotary === null ? t : applyRotary(t, rotary.rows, rotary.rotate));
  return { q: rot(split(w.wq, w.bq)), k: rot(split(w.wk, w.bk)), v: split(w.wv, w.bv) };
}

/**
 * o [B, H, N, dh] → [B, N, H·dh] → the output projection [B, N, dim].
 *
 * @param w - the attention projections
 * @param o - the heads' outputs
 */
export function mergeHeads(w: AttentionProjections, o: tf.Tensor): tf.Tensor {
  const [B, H, N, dh] = o.shape as [number, number, number, number];
  return dense(tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B, N, H * dh]), w.wo, w.bo);
}

/**
 * Multi-head attention: project, attend, merge. x [B, N, dim] → [B, N, dim].
 *
 * @param w - the attention projections
 * @param x - the (normalised) input
 * @param layout - heads, head size and rotary rows
 * @param attend - the attention mechanism
 */
export function multiHeadAttention(
  w: AttentionProjections,
  x: tf.Tensor,
  layout: HeadLayout,
  attend: Attend,
): tf.Tensor {
  const { q, k, v } = projectQkv(w, x, layout);
  return mergeHeads(w, attend(q, k, v));
}

/**
 * One pre-norm block: h = x + drop(attention(LN₁(x))), out = h + drop(FF(LN₂(h))).
 *
 * @param w - the block's norms and feed-forward
 * @param x - the input [B, N, dim]
 * @param attention - the attention sublayer (e.g. multiHeadAttention with a mechanism)
 * @param drop - applied to both residual branches (dropout in training), default none
 */
export function transformerBlock(
  w: BlockWeights,
  x: tf.Tensor,
  attention: AttentionSublayer,
  drop: (t: tf.Tensor) => tf.Tensor = (t) => t,
): tf.Tensor {
  const h = tf.add(x, drop(attention(layerNorm(x, w.norm1Gamma, w.norm1Beta))));
  const f = dense(gelu(dense(layerNorm(h, w.norm2Gamma, w.norm2Beta), w.w1, w.b1)), w.w2, w.b2);
  return tf.add(h, drop(f));
}

/**
 * Fixed sinusoids [length, width]: row p = [sin(p·f_0 … p·f_{w/2−1}), cos(p·f_0 …)] with
 * f_i = 10000^(−2i/w) (performer-pytorch's FixedPositionalEmbedding; also its rotary table).
 *
 * @param length - the number of positions
 * @param width - the embedding width (even)
 */
export function sinusoids(length: number, width: number): Float32Array {
  const half = width / 2;
  const out = new Float32Array(length * width);
  for (let p = 0; p < length; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * 10000 ** (-(2 * i) / width);
      out[p * width + i] = Math.sin(angle);
      out[p * width + half + i] = Math.cos(angle);
    }
  }
  return out;
}
