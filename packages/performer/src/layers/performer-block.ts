import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import type { AttentionKind } from '../block/mechanisms.js';
import {
  type AddWeight,
  type Initializer,
  MultiHeadAttention,
  type PerformerAttentionArgs,
  withDefaults,
} from '../block/multi-head-attention.js';
import { type BlockWeights, transformerBlock } from '../block/transformer-block.js';
import { registerWasmKernels } from './wasm-kernels.js';

export type { AttentionKind, PerformerAttentionArgs };

type Kwargs = Record<string, unknown>;

/** The options as the layer serializes them: every option, defaults filled in (getConfig). */
function serializedArgs(args: PerformerAttentionArgs): tf.serialization.ConfigDict {
  return withDefaults(args) as tf.serialization.ConfigDict;
}

/** The first input of a layer call. */
const first = (inputs: tf.Tensor | tf.Tensor[]) => (Array.isArray(inputs) ? inputs[0]! : inputs);

/**
 * What the zoo's two layers share: the multi-head attention they contain (built into the layer's
 * weights, its auxiliary loss registered), outputs of the input's shape, the padding mask passed
 * through. Not registered for serialization: the layers are.
 */
abstract class AttentionLayer extends layers.Layer {
  protected readonly attention: MultiHeadAttention;

  /**
   * @param className - the layer's class name, for messages
   * @param args - the layer's configuration
   */
  constructor(className: string, args: PerformerAttentionArgs) {
    super({ name: args?.name, trainable: args?.trainable });
    this.supportsMasking = true;
    this.attention = new MultiHeadAttention(className, args);
  }

  /** addWeight for the contained multi-head attention (tfjs-layers keeps it protected). */
  protected adder(): AddWeight {
    return (name, shape, init, trainable = true) =>
      this.addWeight(name, shape, 'float32', init, undefined, trainable);
  }

  /** Builds the contained attention for inputs of width `dim`; returns dim. */
  protected buildAttention(inputShape: (number | null)[] | (number | null)[][]): number {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
    const dim = shape[shape.length - 1]!;
    this.attention.build(this.adder(), dim);
    if (this.attention.hasAuxiliaryLoss) {
      // tfjs-layers evaluates layer losses in the same recorded pass as the forward, so the kept
      // scalar of the last call carries its gradient
      this.addLoss(() => {
        const loss = this.attention.auxiliaryLoss;
        return loss === null || loss.isDisposed ? tf.scalar(0) : loss;
      });
    }
    return dim;
  }

  override computeOutputShape(inputShape: (number | null)[]): (number | null)[] {
    return inputShape;
  }

  /**
   * The weighted auxiliary loss of the last forward pass ('gated': gatePenalty × the gates'
   * sparsity penalty; 'bayesian': klWeight × KL), null for the other mechanisms. It is also
   * registered with addLoss, so `model.fit` adds it to the training loss.
   */
  get auxiliaryLoss(): tf.Scalar | null {
    return this.attention.auxiliaryLoss;
  }

  override dispose(): ReturnType<layers.Layer['dispose']> {
    this.attention.dispose();
    return super.dispose();
  }

  /**
   * The padding mask passes through unchanged (outputs keep the positions of the inputs).
   *
   * @param _inputs - the layer's inputs (unused)
   * @param mask - the incoming padding mask
   */
  override computeMask(
    _inputs: tf.Tensor | tf.Tensor[],
    mask?: tf.Tensor | tf.Tensor[],
  ): tf.Tensor | tf.Tensor[] {
    return mask as tf.Tensor;
  }
}

/**
 * Multi-head attention as a tfjs-layers layer: [B, N, dim] → [B, N, dim], any mechanism of the
 * zoo's registry (FAVOR+ by default). Projections q, k, v, out (no biases), rotary positions on q
 * and k, and the FAVOR+ projection matrix held as a non-trainable weight (so a saved model reloads
 * with the same random features). Serializable (see registerLayers): models containing it save
 * and load with tf.io (model.save / tf.loadLayersModel).
 */
export class PerformerAttention extends AttentionLayer {
  static className = 'PerformerAttention';
  private readonly options: PerformerAttentionArgs;

  /**
   * @param args - the layer's configuration (see PerformerAttentionArgs)
   */
  constructor(args: PerformerAttentionArgs) {
    super('PerformerAttention', args);
    this.options = args;
  }

  override build(inputShape: (number | null)[] | (number | null)[][]): void {
    this.buildAttention(inputShape);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const mask = kwargs?.mask as tf.Tensor | undefined;
    return tf.tidy(() => this.attention.attend(first(inputs), mask, kwargs?.training === true));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...serializedArgs(this.options) };
  }
}

export interface PerformerBlockArgs extends PerformerAttentionArgs {
  /** Feed-forward width multiplier (default 4). */
  ffMult?: number;
  /** Dropout after attention and feed-forward, in training only (default 0). */
  dropout?: number;
}

/**
 * A pre-norm Performer block as a tfjs-layers layer — the zoo's one transformer block
 * (transformerBlock) around a multi-head attention of any mechanism: h = x + Attention(LN(x)),
 * out = h + W2·GELU(W1·LN(h) + b1) + b2, dropout on both residual branches while training.
 * Serializable like PerformerAttention.
 */
export class PerformerBlock extends AttentionLayer {
  static className = 'PerformerBlock';
  private readonly options: PerformerBlockArgs;
  private readonly ffMult: number;
  private readonly dropout: number;
  private own: Record<string, LayerVariable> = {};

  /**
   * @param args - the block's configuration (see PerformerBlockArgs)
   */
  constructor(args: PerformerBlockArgs) {
    super('PerformerBlock', args);
    this.options = args;
    this.ffMult = args.ffMult ?? 4;
    this.dropout = args.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout < 1)) {
      throw new RangeError(
        `PerformerBlock: dropout must be in [0, 1), got ${String(args.dropout)}`,
      );
    }
  }

  override build(inputShape: (number | null)[] | (number | null)[][]): void {
    const dim = this.buildAttention(inputShape);
    const ff = dim * this.ffMult;
    const seed = this.attention.settings.seed;
    const add = (name: string, shape: number[], init: Initializer) => {
      this.own[name] = this.adder()(name, shape, init);
    };
    add('norm1_gamma', [dim], onesInit());
    add('norm1_beta', [dim], zerosInit());
    add('norm2_gamma', [dim], onesInit());
    add('norm2_beta', [dim], zerosInit());
    add('w1', [dim, ff], glorotInit(seed + 4));
    add('b1', [ff], zerosInit());
    add('w2', [ff, dim], glorotInit(seed + 5));
    add('b2', [dim], zerosInit());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const training = kwargs?.training === true;
    const mask = kwargs?.mask as tf.Tensor | undefined;
    const drop = (t: tf.Tensor) => (training && this.dropout > 0 ? tf.dropout(t, this.dropout) : t);
    return tf.tidy(() => {
      const r = (name: string) => this.own[name]!.read();
      // the block's norms and feed-forward; its attention is the contained multi-head attention
      const w = {
        norm1Gamma: r('norm1_gamma'),
        norm1Beta: r('norm1_beta'),
        norm2Gamma: r('norm2_gamma'),
        norm2Beta: r('norm2_beta'),
        w1: r('w1'),
        b1: r('b1'),
        w2: r('w2'),
        b2: r('b2'),
      } as BlockWeights;
      return transformerBlock(
        w,
        first(inputs),
        (a) => this.attention.attend(a, mask, training),
        drop,
      );
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...serializedArgs(this.options),
      ffMult: this.ffMult,
      dropout: this.dropout,
    };
  }
}

const glorotInit = (seed: number) => initializers.glorotUniform({ seed });
const onesInit = () => initializers.ones();
const zerosInit = () => initializers.zeros();

/**
 * Registers `PerformerAttention` and `PerformerBlock` with tfjs-layers' serialization, so that
 * `tf.loadLayersModel` can rebuild a saved model that contains them, and the kernel that training
 * a tfjs-layers model with an `Embedding` needs on wasm (UnsortedSegmentSum, the gradient of
 * `gather`, which tfjs-backend-wasm lacks). In Node, importing the package does it. In a bundle
 * (Vite, webpack, esbuild), the package's entry is side-effect free so that models which do not
 * use tfjs-layers do not bundle it: the registration is kept only where the layer classes are
 * used, so a program that only loads a saved model calls `registerLayers()` before
 * `tf.loadLayersModel`. Idempotent.
 *
 * @example
 * ```ts
 * import { registerLayers } from '@kernel-attention/performer';
 * registerLayers(); // before tf.loadLayersModel(...) of a model with Performer layers
 * ```
 */
export function registerLayers(): void {
  registerWasmKernels();
  tf.serialization.registerClass(PerformerAttention);
  tf.serialization.registerClass(PerformerBlock);
}

registerLayers();
