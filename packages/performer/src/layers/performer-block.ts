import {
  bayesianAttention,
  type CombinerVariant,
  clippedRelativePositions,
  combinerAttention,
  favorAttention,
  gatedAttention,
  type PersistentMemory,
  relationAwareAttention,
  rpeFavorAttention,
  softmaxAttention,
} from '@kernel-attention/core';
import {
  type FeatureMap,
  generalized,
  hyperbolicSoftmax,
  positiveSoftmax,
  trigSoftmax,
} from '@kernel-attention/feature-maps';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import { sinusoids } from '../models/performer-lm/config.js';
import { applyRotary, dense, gelu, layerNorm, rotateEveryTwo } from '../ops.js';
import { registerWasmKernels } from './wasm-kernels.js';

export interface PerformerAttentionArgs {
  heads: number;
  /** Per-head size (default: input dim / heads). */
  dimHead?: number;
  /** Random features per head (m). */
  nbFeatures: number;
  causal?: boolean;
  /** Rotary position embedding on queries and keys (default true). */
  rotary?: boolean;
  /**
   * The mechanism: 'favor' (default: linear attention on `featureMap`), 'softmax' (exact),
   * 'rpe' (rpeFavorAttention: FAVOR+ with a learned relative-position bias, needs maxLength),
   * 'combiner' (combinerAttention, `combinerVariant`), 'gated' (gatedAttention under FAVOR+ with a
   * learned gate network: relaxed gates in training, hard at inference, `gatePenalty`),
   * 'relation' (relationAwareAttention on clipped relative positions, `maxDistance`) or
   * 'bayesian' (bayesianAttention: sampled weights in training, `klWeight`).
   */
  attention?: AttentionKind;
  /**
   * Persistent memory slots per head (default 0), learned keys and values visible to every query;
   * for 'favor' and 'softmax'.
   */
  memorySlots?: number;
  /** 'gated': weight of the gates' sparsity penalty in the training loss (default 0.01). */
  gatePenalty?: number;
  /** 'gated': temperature of the relaxed gates (default 0.5). */
  gateTemperature?: number;
  /** 'relation': relative distances are clipped to ±maxDistance (default 16). */
  maxDistance?: number;
  /** 'bayesian': the Weibull shape k (default 10). */
  weibullShape?: number;
  /** 'bayesian': weight of the KL term in the training loss (default 1e-3). */
  klWeight?: number;
  /** The feature map of 'favor' and 'rpe' (default 'positive', FAVOR+). */
  featureMap?: 'positive' | 'hyperbolic' | 'trig' | 'relu' | 'elu+1';
  /** 'rpe': the longest sequence; the bias weight is [heads, 2·maxLength − 1]. */
  maxLength?: number;
  /** 'combiner': the plan (default 'fixed'). */
  combinerVariant?: CombinerVariant;
  /** Seed of the block-orthogonal projection (default 0); it is a (non-trainable) weight. */
  seed?: number;
  featureEps?: number;
  name?: string;
  trainable?: boolean;
}

type Kwargs = Record<string, unknown>;

export type AttentionKind =
  | 'favor'
  | 'softmax'
  | 'rpe'
  | 'combiner'
  | 'gated'
  | 'relation'
  | 'bayesian';
const ATTENTION_KINDS: AttentionKind[] = [
  'favor',
  'softmax',
  'rpe',
  'combiner',
  'gated',
  'relation',
  'bayesian',
];

const FEATURE_MAPS = ['positive', 'hyperbolic', 'trig', 'relu', 'elu+1'];

/**
 * Multi-head FAVOR+ attention as a tfjs-layers layer: [B, N, dim] → [B, N, dim]. Projections
 * q, k, v, out (no biases), rotary positions on q and k, and the FAVOR+ projection matrix held as a
 * non-trainable weight (so a saved model reloads with the same random features). Serializable:
 * `tf.serialization.registerClass` is done on import, so models containing it save and load with
 * tf.io (model.save / tf.loadLayersModel).
 */
export class PerformerAttention extends layers.Layer {
  static className = 'PerformerAttention';
  protected readonly args: Required<
    Omit<PerformerAttentionArgs, 'name' | 'trainable' | 'dimHead'>
  > & {
    dimHead?: number;
  };
  protected dimHead = 0;
  private wq!: LayerVariable;
  private wk!: LayerVariable;
  private wv!: LayerVariable;
  private wo!: LayerVariable;
  private projection!: LayerVariable;
  private relativeBias: LayerVariable | null = null;
  private memoryKeys: LayerVariable | null = null;
  private memoryValues: LayerVariable | null = null;
  private gateW: LayerVariable | null = null;
  private gateB: LayerVariable | null = null;
  private relationKeys: LayerVariable | null = null;
  private relationValues: LayerVariable | null = null;
  private priorW: LayerVariable | null = null;
  /** The last forward pass's weighted auxiliary loss (gate penalty or KL), read by addLoss. */
  private auxLoss: tf.Scalar | null = null;
  private calls = 0;
  private readonly relationCache = new Map<number, tf.Tensor>();

  /**
   * @param args - the layer's configuration (see PerformerAttentionArgs)
   */
  constructor(args: PerformerAttentionArgs) {
    super({ name: args.name, trainable: args.trainable });
    this.supportsMasking = true;
    const fn = `${(this.constructor as typeof PerformerAttention).className}`;
    for (const key of ['heads', 'nbFeatures'] as const) {
      if (!Number.isInteger(args?.[key]) || args[key] < 1) {
        throw new RangeError(
          `${fn}: ${key} must be a positive integer, got ${String(args?.[key])}`,
        );
      }
    }
    const attention = args.attention ?? 'favor';
    if (!ATTENTION_KINDS.includes(attention)) {
      throw new RangeError(
        `${fn}: attention must be one of ${ATTENTION_KINDS.join(', ')}, got ${JSON.stringify(attention)}`,
      );
    }
    const memorySlots = args.memorySlots ?? 0;
    if (!Number.isInteger(memorySlots) || memorySlots < 0) {
      throw new RangeError(
        `${fn}: memorySlots must be an integer >= 0, got ${String(args.memorySlots)}`,
      );
    }
    if (memorySlots > 0 && attention !== 'favor' && attention !== 'softmax') {
      throw new RangeError(
        `${fn}: memorySlots is for attention 'favor' or 'softmax', got attention ${JSON.stringify(attention)}`,
      );
    }
    const nonNegative = { gatePenalty: 0.01, klWeight: 1e-3 };
    for (const [key, dflt] of Object.entries(nonNegative) as [keyof typeof nonNegative, number][]) {
      const x = args[key] ?? dflt;
      if (!(Number.isFinite(x) && x >= 0)) {
        throw new RangeError(
          `${fn}: ${key} must be a finite number >= 0, got ${String(args[key])}`,
        );
      }
    }
    for (const key of ['gateTemperature', 'weibullShape'] as const) {
      const x = args[key] ?? 1;
      if (!(Number.isFinite(x) && x > 0)) {
        throw new RangeError(`${fn}: ${key} must be a finite number > 0, got ${String(args[key])}`);
      }
    }
    if (!Number.isInteger(args.maxDistance ?? 16) || (args.maxDistance ?? 16) < 0) {
      throw new RangeError(
        `${fn}: maxDistance must be an integer >= 0, got ${String(args.maxDistance)}`,
      );
    }
    if (!FEATURE_MAPS.includes(args.featureMap ?? 'positive')) {
      throw new RangeError(
        `${fn}: featureMap must be one of ${FEATURE_MAPS.join(', ')}, got ${JSON.stringify(args.featureMap)}`,
      );
    }
    if (attention === 'rpe' && !(Number.isInteger(args.maxLength) && args.maxLength! >= 1)) {
      throw new RangeError(
        `${fn}: attention 'rpe' needs maxLength, a positive integer, got ${String(args.maxLength)}`,
      );
    }
    this.args = {
      heads: args.heads,
      dimHead: args.dimHead,
      nbFeatures: args.nbFeatures,
      causal: args.causal ?? false,
      rotary: args.rotary ?? true,
      attention: args.attention ?? 'favor',
      featureMap: args.featureMap ?? 'positive',
      maxLength: args.maxLength ?? 0,
      combinerVariant: args.combinerVariant ?? 'fixed',
      seed: args.seed ?? 0,
      featureEps: args.featureEps ?? 1e-4,
      memorySlots,
      gatePenalty: args.gatePenalty ?? 0.01,
      gateTemperature: args.gateTemperature ?? 0.5,
      maxDistance: args.maxDistance ?? 16,
      weibullShape: args.weibullShape ?? 10,
      klWeight: args.klWeight ?? 1e-3,
    };
  }

  override build(inputShape: (number | null)[] | (number | null)[][]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
    const dim = shape[shape.length - 1]!;
    const { heads, nbFeatures, seed } = this.args;
    this.dimHead = this.args.dimHead ?? dim / heads;
    if (!Number.isInteger(this.dimHead) || (this.args.rotary && this.dimHead % 2 !== 0)) {
      throw new RangeError(
        `${this.getClassName()}: dimHead must be an integer (even with rotary), got ${this.dimHead} for input dim ${dim} and ${heads} heads`,
      );
    }
    const inner = heads * this.dimHead;
    this.wq = this.addWeight('wq', [dim, inner], 'float32', glorotInit(seed));
    this.wk = this.addWeight('wk', [dim, inner], 'float32', glorotInit(seed + 1));
    this.wv = this.addWeight('wv', [dim, inner], 'float32', glorotInit(seed + 2));
    this.wo = this.addWeight('wo', [inner, dim], 'float32', glorotInit(seed + 3));
    this.projection = this.addWeight(
      'projection',
      [nbFeatures, this.dimHead],
      'float32',
      zerosInit(),
      undefined,
      false,
    );
    const p = gaussianOrthogonal(nbFeatures, this.dimHead, { seed });
    this.projection.write(tf.tensor2d(Float32Array.from(p.data), [nbFeatures, this.dimHead]));
    if (this.args.attention === 'rpe') {
      this.relativeBias = this.addWeight(
        'relative_bias',
        [heads, 2 * this.args.maxLength - 1],
        'float32',
        zerosInit(),
      );
    }
    const { memorySlots, attention, maxDistance } = this.args;
    const small = (offset: number) =>
      initializers.randomNormal({ stddev: 0.02, seed: seed + offset });
    if (memorySlots > 0) {
      this.memoryKeys = this.addWeight(
        'memory_keys',
        [heads, memorySlots, this.dimHead],
        'float32',
        small(10),
      );
      this.memoryValues = this.addWeight(
        'memory_values',
        [heads, memorySlots, this.dimHead],
        'float32',
        small(11),
      );
    }
    if (attention === 'gated') {
      this.gateW = this.addWeight('gate_kernel', [dim, 1], 'float32', small(12));
      // gates start mostly open: σ(2) ≈ 0.88
      this.gateB = this.addWeight('gate_bias', [1], 'float32', initializers.constant({ value: 2 }));
    }
    if (attention === 'relation') {
      const R = 2 * maxDistance + 1;
      this.relationKeys = this.addWeight('relation_keys', [R, this.dimHead], 'float32', small(13));
      this.relationValues = this.addWeight(
        'relation_values',
        [R, this.dimHead],
        'float32',
        small(14),
      );
    }
    if (attention === 'bayesian') {
      this.priorW = this.addWeight('prior_kernel', [this.dimHead, 1], 'float32', small(15));
    }
    if (attention === 'gated' || attention === 'bayesian') {
      // tfjs-layers evaluates layer losses in the same recorded pass as the forward, so the kept
      // scalar of the last call carries its gradient
      this.addLoss(() =>
        this.auxLoss === null || this.auxLoss.isDisposed ? tf.scalar(0) : this.auxLoss,
      );
    }
    this.buildExtra(dim);
    this.built = true;
  }

  /** The configured feature map on the projection weight (made per call: the weight may change). */
  private makeFeatureMap(): FeatureMap {
    const projection = this.projection.read() as tf.Tensor2D;
    const eps = this.args.featureEps;
    switch (this.args.featureMap) {
      case 'hyperbolic':
        return hyperbolicSoftmax({ projection, eps });
      case 'trig':
        return trigSoftmax({ projection });
      case 'relu':
      case 'elu+1':
        return generalized({ projection, fn: this.args.featureMap });
      default:
        return positiveSoftmax({ projection, eps });
    }
  }

  /** Subclasses add their own weights here. */
  protected buildExtra(_dim: number): void {}

  override computeOutputShape(inputShape: (number | null)[]): (number | null)[] {
    return inputShape;
  }

  /**
   * The attention sublayer: x [B, N, dim] → [B, N, dim]; `mask` [B, N] (from a masking layer such
   * as an Embedding with maskZero): padded keys are not attended to.
   */
  protected attend(x: tf.Tensor, mask?: tf.Tensor, training = false): tf.Tensor {
    const [B, N] = x.shape as [number, number, number];
    const { heads: H, causal, rotary, attention } = this.args;
    const dh = this.dimHead;
    const split = (w: LayerVariable) =>
      tf.transpose(tf.reshape(dense(x, w.read()), [B, N, H, dh]), [0, 2, 1, 3]);
    let q = split(this.wq);
    let k = split(this.wk);
    const v = split(this.wv);
    if (rotary) {
      const rows = tf.tensor2d(sinusoids(N, dh), [N, dh]);
      const R = rotateEveryTwo(dh);
      const rot = (t: tf.Tensor) => applyRotary(t, rows, R);
      q = rot(q);
      k = rot(k);
    }
    const keep = mask === undefined || mask === null ? undefined : tf.cast(mask, 'float32');
    const memory: PersistentMemory | undefined =
      this.memoryKeys === null
        ? undefined
        : { keys: this.memoryKeys.read(), values: this.memoryValues!.read() };
    let o: tf.Tensor;
    if (attention === 'softmax') {
      o = softmaxAttention(q, k, v, { causal, mask: keep, memory });
    } else if (attention === 'relation') {
      o = relationAwareAttention(q, k, v, {
        relations: this.relationIds(N),
        relationKeys: this.relationKeys!.read(),
        relationValues: this.relationValues!.read(),
        causal,
        mask: keep,
      });
    } else if (attention === 'bayesian') {
      const priorLogits = tf.reshape(dense(k, this.priorW!.read()), [B, H, N]);
      const r = bayesianAttention(q, k, v, {
        training,
        shape: this.args.weibullShape,
        seed: this.args.seed * 100003 + this.calls++,
        causal,
        mask: keep,
        priorLogits,
      });
      this.setAuxLoss(tf.mul(r.kl, this.args.klWeight) as tf.Scalar);
      o = r.output;
    } else if (attention === 'gated') {
      const gates = tf.sigmoid(
        tf.reshape(dense(x, this.gateW!.read(), this.gateB!.read()), [B, N]),
      );
      const phi = this.makeFeatureMap();
      const r = gatedAttention(q, k, v, {
        gates,
        mode: training ? 'relaxed' : 'hard',
        temperature: this.args.gateTemperature,
        seed: this.args.seed * 100003 + this.calls++,
        featureMap: phi,
        causal,
        mask: keep,
        returnPenalty: true,
      });
      phi.dispose?.();
      this.setAuxLoss(tf.mul(r.penalty, this.args.gatePenalty) as tf.Scalar);
      o = r.output;
    } else if (attention === 'combiner') {
      o = combinerAttention(q, k, v, { variant: this.args.combinerVariant, causal, mask: keep });
    } else {
      const phi = this.makeFeatureMap();
      if (attention === 'rpe') {
        const maxLength = this.args.maxLength;
        if (N > maxLength) {
          throw new RangeError(
            `${this.getClassName()}: sequence length ${N} exceeds maxLength ${maxLength}`,
          );
        }
        // offsets −(N−1) … N−1 sit at maxLength − N … maxLength + N − 2 of the bias weight
        const relativeBias = tf.slice(
          this.relativeBias!.read(),
          [0, maxLength - N],
          [H, 2 * N - 1],
        );
        o = rpeFavorAttention(q, k, v, { featureMap: phi, relativeBias, causal, mask: keep });
      } else {
        o = favorAttention(q, k, v, { featureMap: phi, causal, mask: keep, memory });
      }
      phi.dispose?.();
    }
    const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B, N, H * dh]);
    return dense(merged, this.wo.read());
  }

  /** Clipped relative-position ids [N, N] for 'relation', built once per sequence length. */
  private relationIds(N: number): tf.Tensor {
    let ids = this.relationCache.get(N);
    if (ids === undefined) {
      ids = tf.keep(clippedRelativePositions(N, this.args.maxDistance));
      this.relationCache.set(N, ids);
    }
    return ids;
  }

  /** Keeps the auxiliary loss of this forward pass (the previous one is freed). */
  private setAuxLoss(loss: tf.Scalar): void {
    this.auxLoss?.dispose();
    this.auxLoss = tf.keep(loss);
  }

  /**
   * The weighted auxiliary loss of the last forward pass ('gated': gatePenalty × the gates'
   * sparsity penalty; 'bayesian': klWeight × KL), null for the other mechanisms. It is also
   * registered with addLoss, so `model.fit` adds it to the training loss.
   */
  get auxiliaryLoss(): tf.Scalar | null {
    return this.auxLoss;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() =>
      this.attend(
        Array.isArray(inputs) ? inputs[0]! : inputs,
        kwargs?.mask as tf.Tensor | undefined,
        kwargs?.training === true,
      ),
    );
  }

  override dispose(): ReturnType<layers.Layer['dispose']> {
    this.auxLoss?.dispose();
    this.auxLoss = null;
    for (const ids of this.relationCache.values()) ids.dispose();
    this.relationCache.clear();
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

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...this.args } as tf.serialization.ConfigDict;
  }
}

export interface PerformerBlockArgs extends PerformerAttentionArgs {
  /** Feed-forward width multiplier (default 4). */
  ffMult?: number;
  /** Dropout after attention and feed-forward, in training only (default 0). */
  dropout?: number;
}

/**
 * A pre-norm Performer block as a tfjs-layers layer: h = x + Attention(LN(x)),
 * out = h + W2·GELU(W1·LN(h) + b1) + b2, dropout on both residual branches while training.
 * Serializable like PerformerAttention.
 */
export class PerformerBlock extends PerformerAttention {
  static override className = 'PerformerBlock';
  private readonly ffMult: number;
  private readonly dropout: number;
  private g1!: LayerVariable;
  private b1n!: LayerVariable;
  private g2!: LayerVariable;
  private b2n!: LayerVariable;
  private w1!: LayerVariable;
  private b1!: LayerVariable;
  private w2!: LayerVariable;
  private b2!: LayerVariable;

  /**
   * @param args - the block's configuration (see PerformerBlockArgs)
   */
  constructor(args: PerformerBlockArgs) {
    super(args);
    this.ffMult = args.ffMult ?? 4;
    this.dropout = args.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout < 1)) {
      throw new RangeError(
        `PerformerBlock: dropout must be in [0, 1), got ${String(args.dropout)}`,
      );
    }
  }

  protected override buildExtra(dim: number): void {
    const ff = dim * this.ffMult;
    const seed = this.args.seed;
    this.g1 = this.addWeight('norm1_gamma', [dim], 'float32', onesInit());
    this.b1n = this.addWeight('norm1_beta', [dim], 'float32', zerosInit());
    this.g2 = this.addWeight('norm2_gamma', [dim], 'float32', onesInit());
    this.b2n = this.addWeight('norm2_beta', [dim], 'float32', zerosInit());
    this.w1 = this.addWeight('w1', [dim, ff], 'float32', glorotInit(seed + 4));
    this.b1 = this.addWeight('b1', [ff], 'float32', zerosInit());
    this.w2 = this.addWeight('w2', [ff, dim], 'float32', glorotInit(seed + 5));
    this.b2 = this.addWeight('b2', [dim], 'float32', zerosInit());
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const training = kwargs?.training === true;
    const drop = (t: tf.Tensor) => (training && this.dropout > 0 ? tf.dropout(t, this.dropout) : t);
    return tf.tidy(() => {
      const ln = (t: tf.Tensor, g: LayerVariable, b: LayerVariable) =>
        layerNorm(t, g.read(), b.read());
      const h = tf.add(
        x,
        drop(
          this.attend(ln(x, this.g1, this.b1n), kwargs?.mask as tf.Tensor | undefined, training),
        ),
      );
      const a = dense(ln(h, this.g2, this.b2n), this.w1.read(), this.b1.read());
      return tf.add(h, drop(dense(gelu(a), this.w2.read(), this.b2.read())));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ffMult: this.ffMult, dropout: this.dropout };
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
