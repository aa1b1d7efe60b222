import * as tf from '@tensorflow/tfjs-core';
import type { PerformerLMConfig } from '../performer-lm/config.js';
import { PerformerLM } from '../performer-lm/performer-lm.js';

export interface PerformerEncoderConfig extends Omit<PerformerLMConfig, 'causal'> {
  /** Classes of the sequence-classification head (omit for none). */
  numClasses?: number;
}

/**
 * A bidirectional Performer encoder with two heads: masked-LM (per-position logits over the
 * vocabulary, the LM's output projection) and sequence classification (mean of the final hidden
 * states over the unpadded positions → a dense layer). The body is a PerformerLM with
 * causal: false, so everything PerformerLM offers (checkpoints, conversion, projections) applies.
 */
export class PerformerEncoder {
  readonly body: PerformerLM;
  readonly numClasses: number;
  private readonly classifierWeight: tf.Variable | null;
  private readonly classifierBias: tf.Variable | null;

  /**
   * @param body - the Performer body (a bidirectional PerformerLM, whose logits are the masked-LM head)
   * @param classifier - the classification head's weights, or null
   */
  constructor(body: PerformerLM, classifier?: { weight: tf.Variable; bias: tf.Variable }) {
    if (body.config.causal)
      throw new RangeError('PerformerEncoder: the body must be bidirectional (causal: false)');
    this.body = body;
    this.classifierWeight = classifier?.weight ?? null;
    this.classifierBias = classifier?.bias ?? null;
    this.numClasses = classifier?.weight.shape[1] ?? 0;
  }

  /** The classification head's weights ([dim, numClasses] and [numClasses]), or null. */
  get classifier(): { weight: tf.Tensor2D; bias: tf.Tensor1D } | null {
    return this.classifierWeight === null || this.classifierBias === null
      ? null
      : {
          weight: this.classifierWeight as unknown as tf.Tensor2D,
          bias: this.classifierBias as unknown as tf.Tensor1D,
        };
  }

  /**
   * @param config - the model's sizes (see PerformerEncoderConfig)
   * @param opts - `{ seed }` for the initial weights and features
   */
  static create(config: PerformerEncoderConfig, opts: { seed?: number } = {}): PerformerEncoder {
    const { numClasses, ...rest } = config;
    const body = PerformerLM.create({ ...rest, causal: false }, opts);
    if (numClasses === undefined) return new PerformerEncoder(body);
    if (!Number.isInteger(numClasses) || numClasses < 2) {
      body.dispose();
      throw new RangeError(
        `PerformerEncoder.create: numClasses must be an integer >= 2, got ${String(numClasses)}`,
      );
    }
    const limit = Math.sqrt(6 / (config.dim + numClasses));
    const weight = tf.tidy(() =>
      tf.variable(
        tf.randomUniform([config.dim, numClasses], -limit, limit, 'float32', (opts.seed ?? 0) + 1),
      ),
    );
    const bias = tf.tidy(() => tf.variable(tf.zeros([numClasses])));
    return new PerformerEncoder(body, { weight, bias });
  }

  /**
   * Masked-LM logits [B, N, numTokens]; `mask` [B][N] 1 keep, 0 pad.
   *
   * @param tokens - token ids [B][N]
   * @param opts - `{ mask }`: [B][N], 1 for real tokens, 0 for padding
   */
  mlmLogits(tokens: number[][], opts: { mask?: number[][] } = {}): tf.Tensor3D {
    return this.body.logits(tokens, opts);
  }

  /**
   * Class logits [B, numClasses] from the mean final hidden state over unpadded positions.
   *
   * @param tokens - token ids [B][N]
   * @param opts - `{ mask }`: [B][N], 1 for real tokens, 0 for padding
   */
  classify(tokens: number[][], opts: { mask?: number[][] } = {}): tf.Tensor2D {
    if (this.classifierWeight === null || this.classifierBias === null) {
      throw new Error(
        'PerformerEncoder.classify: this encoder has no classification head (numClasses)',
      );
    }
    const hidden = this.body.hidden(tokens, opts);
    return tf.tidy(() => {
      const [B, N] = hidden.shape;
      const keep = opts.mask ? tf.tensor2d(opts.mask, [B, N]) : tf.ones([B, N]);
      const w = tf.expandDims(keep, -1);
      const pooled = tf.div(tf.sum(tf.mul(hidden, w), 1), tf.maximum(tf.sum(w, 1), 1));
      hidden.dispose();
      return tf.add(
        tf.matMul(pooled as tf.Tensor2D, this.classifierWeight as tf.Tensor2D),
        this.classifierBias!,
      ) as tf.Tensor2D;
    });
  }

  /**
   * Mean cross-entropy of the class labels [B].
   *
   * @param tokens - token ids [B][N]
   * @param labels - class ids [B]
   * @param opts - `{ mask }`: [B][N], 1 for real tokens, 0 for padding
   */
  classificationLoss(
    tokens: number[][],
    labels: number[],
    opts: { mask?: number[][] } = {},
  ): tf.Scalar {
    const fn = 'PerformerEncoder.classificationLoss';
    if (!Array.isArray(labels) || labels.length !== tokens.length) {
      throw new RangeError(
        `${fn}: labels must hold one class per sequence (${tokens.length}), got ${labels?.length}`,
      );
    }
    for (const [b, y] of labels.entries()) {
      if (!Number.isInteger(y) || y < 0 || y >= this.numClasses) {
        throw new RangeError(
          `${fn}: label ${y} of sequence ${b} is out of range [0, ${this.numClasses})`,
        );
      }
    }
    return tf.tidy(() => {
      const logits = this.classify(tokens, opts);
      const logp = tf.sub(logits, tf.logSumExp(logits, -1, true));
      const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), this.numClasses);
      return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), -1))) as tf.Scalar;
    });
  }

  trainableVariables(): tf.Variable[] {
    const head = [this.classifierWeight, this.classifierBias].filter(
      (v): v is tf.Variable => v !== null,
    );
    return [...this.body.trainableVariables(), ...head];
  }

  dispose(): void {
    this.body.dispose();
    tf.dispose(
      [this.classifierWeight, this.classifierBias].filter((v): v is tf.Variable => v !== null),
    );
  }
}
