/**
 * Multi-head attention as the zoo's tfjs-layers layers hold it: the projections q, k, v, out
 * (no biases), the FAVOR+ projection (a non-trainable weight, so a saved model reloads with its
 * random features), the chosen mechanism's own weights, rotary positions on q and k. Both
 * PerformerAttention and PerformerBlock contain one.
 */
import { type CombinerVariant, clippedRelativePositions } from '@kernel-attention/core';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable } from '@tensorflow/tfjs-layers';
import { rotateEveryTwo } from '../ops.js';
import {
  type AttendContext,
  type AttentionKind,
  FEATURE_MAP_NAMES,
  type FeatureMapName,
  MECHANISMS,
  type MechanismOptions,
  mechanismOf,
  namedFeatureMap,
  type WeightSpec,
} from './mechanisms.js';
import { type HeadLayout, multiHeadAttention, sinusoids } from './transformer-block.js';

/** The layers' options (flat, as they are serialized; see resolveMechanism for what each kind reads). */
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
  /** The feature map of 'favor', 'rpe' and 'gated' (default 'positive', FAVOR+). */
  featureMap?: FeatureMapName;
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

/** The options every mechanism shares, resolved. */
export interface AttentionSettings {
  heads: number;
  dimHead?: number;
  nbFeatures: number;
  causal: boolean;
  rotary: boolean;
  seed: number;
  /** The mechanism and its own options. */
  mechanism: MechanismOptions;
}

const KINDS = Object.keys(MECHANISMS) as AttentionKind[];

/** Every optional layer option's default, in one place (resolveAttention and getConfig read it). */
export const ATTENTION_DEFAULTS = {
  causal: false,
  rotary: true,
  attention: 'favor' as AttentionKind,
  featureMap: 'positive' as FeatureMapName,
  maxLength: 0,
  combinerVariant: 'fixed' as CombinerVariant,
  seed: 0,
  featureEps: 1e-4,
  memorySlots: 0,
  gatePenalty: 0.01,
  gateTemperature: 0.5,
  maxDistance: 16,
  weibullShape: 10,
  klWeight: 1e-3,
};

/** The layer options with every default filled in (dimHead stays as given). */
export function withDefaults(
  args: PerformerAttentionArgs,
): Pick<PerformerAttentionArgs, 'heads' | 'dimHead' | 'nbFeatures'> & typeof ATTENTION_DEFAULTS {
  const filled = { ...ATTENTION_DEFAULTS };
  for (const key of Object.keys(ATTENTION_DEFAULTS) as (keyof typeof ATTENTION_DEFAULTS)[]) {
    if (args[key] !== undefined && args[key] !== null) {
      (filled as Record<string, unknown>)[key] = args[key];
    }
  }
  return { heads: args.heads, dimHead: args.dimHead, nbFeatures: args.nbFeatures, ...filled };
}

/** A finite number checked against a bound, or its default. */
function numberArg(
  fn: string,
  args: PerformerAttentionArgs,
  key: keyof PerformerAttentionArgs & keyof typeof ATTENTION_DEFAULTS,
  test: (x: number) => boolean,
  what: string,
): number {
  const x = (args[key] as number | undefined) ?? (ATTENTION_DEFAULTS[key] as number);
  if (!(typeof x === 'number' && Number.isFinite(x) && test(x))) {
    throw new RangeError(`${fn}: ${key} must be ${what}, got ${String(args[key])}`);
  }
  return x;
}

/**
 * The flat layer options as one checked AttentionSettings: the shared options, and the mechanism's
 * own as one member of MechanismOptions. Errors name the option.
 *
 * @param fn - the layer's class name, for messages
 * @param args - the layer's options
 */
export function resolveAttention(fn: string, args: PerformerAttentionArgs): AttentionSettings {
  for (const key of ['heads', 'nbFeatures'] as const) {
    if (!Number.isInteger(args?.[key]) || args[key] < 1) {
      throw new RangeError(`${fn}: ${key} must be a positive integer, got ${String(args?.[key])}`);
    }
  }
  const o = withDefaults(args);
  const kind = o.attention;
  if (!KINDS.includes(kind)) {
    throw new RangeError(
      `${fn}: attention must be one of ${KINDS.join(', ')}, got ${JSON.stringify(kind)}`,
    );
  }
  const memorySlots = numberArg(
    fn,
    args,
    'memorySlots',
    (x) => Number.isInteger(x) && x >= 0,
    'an integer >= 0',
  );
  if (memorySlots > 0 && kind !== 'favor' && kind !== 'softmax') {
    throw new RangeError(
      `${fn}: memorySlots is for attention 'favor' or 'softmax', got attention ${JSON.stringify(kind)}`,
    );
  }
  const penalty = numberArg(fn, args, 'gatePenalty', (x) => x >= 0, 'a finite number >= 0');
  const klWeight = numberArg(fn, args, 'klWeight', (x) => x >= 0, 'a finite number >= 0');
  const temperature = numberArg(fn, args, 'gateTemperature', (x) => x > 0, 'a finite number > 0');
  const weibullShape = numberArg(fn, args, 'weibullShape', (x) => x > 0, 'a finite number > 0');
  const maxDistance = numberArg(
    fn,
    args,
    'maxDistance',
    (x) => Number.isInteger(x) && x >= 0,
    'an integer >= 0',
  );
  const featureMap = o.featureMap;
  if (!FEATURE_MAP_NAMES.includes(featureMap)) {
    throw new RangeError(
      `${fn}: featureMap must be one of ${FEATURE_MAP_NAMES.join(', ')}, got ${JSON.stringify(args.featureMap)}`,
    );
  }
  if (kind === 'rpe' && !(Number.isInteger(args.maxLength) && args.maxLength! >= 1)) {
    throw new RangeError(
      `${fn}: attention 'rpe' needs maxLength, a positive integer, got ${String(args.maxLength)}`,
    );
  }
  const features = { featureMap, featureEps: o.featureEps };
  const mechanisms: { [K in AttentionKind]: () => Extract<MechanismOptions, { kind: K }> } = {
    favor: () => ({ kind: 'favor', memorySlots, ...features }),
    softmax: () => ({ kind: 'softmax', memorySlots }),
    rpe: () => ({ kind: 'rpe', maxLength: args.maxLength!, ...features }),
    combiner: () => ({ kind: 'combiner', variant: o.combinerVariant }),
    gated: () => ({ kind: 'gated', penalty, temperature, ...features }),
    relation: () => ({ kind: 'relation', maxDistance }),
    bayesian: () => ({ kind: 'bayesian', weibullShape, klWeight }),
  };
  return {
    heads: args.heads,
    ...(args.dimHead === undefined ? {} : { dimHead: args.dimHead }),
    nbFeatures: args.nbFeatures,
    causal: o.causal,
    rotary: o.rotary,
    seed: o.seed,
    mechanism: mechanisms[kind](),
  };
}

/** A tfjs-layers initializer. */
export type Initializer = ReturnType<typeof initializers.zeros>;

/** The owning layer's addWeight (protected in tfjs-layers, so the layer hands it over). */
export type AddWeight = (
  name: string,
  shape: number[],
  init: Initializer,
  trainable?: boolean,
) => LayerVariable;

/** The weights of a mechanism's WeightSpec, as a tfjs-layers initializer. */
function initializerOf(spec: WeightSpec, seed: number): Initializer {
  switch (spec.init.kind) {
    case 'small':
      return initializers.randomNormal({ stddev: 0.02, seed: seed + spec.init.seedOffset });
    case 'zeros':
      return initializers.zeros();
    default:
      return initializers.constant({ value: spec.init.value });
  }
}

/** See the module comment. */
export class MultiHeadAttention {
  readonly settings: AttentionSettings;
  dimHead = 0;
  private wq!: LayerVariable;
  private wk!: LayerVariable;
  private wv!: LayerVariable;
  private wo!: LayerVariable;
  private projection!: LayerVariable;
  private own: Record<string, LayerVariable> = {};
  private auxLoss: tf.Scalar | null = null;
  private calls = 0;
  private readonly relationCache = new Map<number, tf.Tensor>();

  /**
   * @param fn - the owning layer's class name, for messages
   * @param args - the layer's options
   */
  constructor(
    private readonly fn: string,
    args: PerformerAttentionArgs,
  ) {
    this.settings = resolveAttention(fn, args);
  }

  /**
   * Adds the weights to the owning layer for inputs of width `dim`, in the order saved models
   * hold them.
   *
   * @param addWeight - the owning layer's addWeight
   * @param dim - the input width
   */
  build(addWeight: AddWeight, dim: number): void {
    const { heads, nbFeatures, seed, rotary, mechanism } = this.settings;
    this.dimHead = this.settings.dimHead ?? dim / heads;
    if (!Number.isInteger(this.dimHead) || (rotary && this.dimHead % 2 !== 0)) {
      throw new RangeError(
        `${this.fn}: dimHead must be an integer (even with rotary), got ${this.dimHead} for input dim ${dim} and ${heads} heads`,
      );
    }
    const inner = heads * this.dimHead;
    const glorot = (offset: number) => initializers.glorotUniform({ seed: seed + offset });
    this.wq = addWeight('wq', [dim, inner], glorot(0));
    this.wk = addWeight('wk', [dim, inner], glorot(1));
    this.wv = addWeight('wv', [dim, inner], glorot(2));
    this.wo = addWeight('wo', [inner, dim], glorot(3));
    const dh = this.dimHead;
    this.projection = addWeight('projection', [nbFeatures, dh], initializers.zeros(), false);
    const p = gaussianOrthogonal(nbFeatures, dh, { seed });
    this.projection.write(tf.tensor2d(Float32Array.from(p.data), [nbFeatures, dh]));
    for (const spec of mechanismOf(mechanism).weights(mechanism, { dim, heads, dimHead: dh })) {
      this.own[spec.name] = addWeight(spec.name, spec.shape, initializerOf(spec, seed));
    }
  }

  /** Whether the mechanism adds a training loss (the registry says: gated, bayesian). */
  get hasAuxiliaryLoss(): boolean {
    return mechanismOf(this.settings.mechanism).auxiliaryLoss;
  }

  /** The weighted auxiliary loss of the last call, or null. */
  get auxiliaryLoss(): tf.Scalar | null {
    return this.auxLoss;
  }

  /**
   * x [B, N, dim] → [B, N, dim]; `mask` [B, N] (1 keep, 0 pad). Call inside a tidy.
   *
   * @param x - the (normalised) input
   * @param mask - the padding mask, or undefined
   * @param training - whether this is a training pass
   */
  attend(x: tf.Tensor, mask: tf.Tensor | undefined, training: boolean): tf.Tensor {
    const N = x.shape[1]!;
    const { heads, rotary, causal, mechanism, seed } = this.settings;
    const dh = this.dimHead;
    const layout: HeadLayout = {
      heads,
      dimHead: dh,
      rotary: rotary
        ? { rows: tf.tensor2d(sinusoids(N, dh), [N, dh]), rotate: rotateEveryTwo(dh) }
        : null,
    };
    const weights = Object.fromEntries(Object.entries(this.own).map(([n, w]) => [n, w.read()]));
    const w = {
      wq: this.wq.read(),
      wk: this.wk.read(),
      wv: this.wv.read(),
      wo: this.wo.read(),
    } as {
      wq: tf.Tensor2D;
      wk: tf.Tensor2D;
      wv: tf.Tensor2D;
      wo: tf.Tensor2D;
    };
    return multiHeadAttention(w, x, layout, (q, k, v) => {
      const context: AttendContext = {
        q,
        k,
        v,
        x,
        mask: mask === undefined || mask === null ? undefined : tf.cast(mask, 'float32'),
        causal,
        training,
        weights,
        featureMap: (choice) => namedFeatureMap(this.projection.read() as tf.Tensor2D, choice),
        relationIds: (n, maxDistance) => this.relationIds(n, maxDistance),
        nextSeed: () => seed * 100003 + this.calls++,
        name: this.fn,
      };
      const { output, auxLoss } = mechanismOf(mechanism).attend(mechanism, context);
      if (auxLoss !== undefined) this.setAuxLoss(auxLoss);
      return output;
    });
  }

  /** Clipped relative-position ids [N, N] for 'relation', built once per sequence length. */
  private relationIds(N: number, maxDistance: number): tf.Tensor {
    let ids = this.relationCache.get(N);
    if (ids === undefined) {
      ids = tf.keep(clippedRelativePositions(N, maxDistance));
      this.relationCache.set(N, ids);
    }
    return ids;
  }

  /** Keeps the auxiliary loss of this forward pass (the previous one is freed). */
  private setAuxLoss(loss: tf.Scalar): void {
    this.auxLoss?.dispose();
    this.auxLoss = tf.keep(loss);
  }

  /** Frees what the attention keeps between calls (the last loss, cached relation ids). */
  dispose(): void {
    this.auxLoss?.dispose();
    this.auxLoss = null;
    for (const ids of this.relationCache.values()) ids.dispose();
    this.relationCache.clear();
  }
}
