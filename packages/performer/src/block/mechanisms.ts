/**
 * The attention mechanisms a zoo layer can run, as a registry keyed by kind: each declares its own
 * options (one member of a discriminated union), the weights it adds to the layer and how it
 * attends. Adding a mechanism adds one entry here; the layer code does not change.
 */
import {
  bayesianAttention,
  type CombinerVariant,
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
import * as tf from '@tensorflow/tfjs-core';
import { dense } from '../ops.js';

/** The feature maps a layer can name (it is serialized by name). */
export type FeatureMapName = 'positive' | 'hyperbolic' | 'trig' | 'relu' | 'elu+1';
export const FEATURE_MAP_NAMES: readonly FeatureMapName[] = [
  'positive',
  'hyperbolic',
  'trig',
  'relu',
  'elu+1',
];

/** A layer's feature map: which, and its floor. */
export interface FeatureMapChoice {
  featureMap: FeatureMapName;
  featureEps: number;
}

/** Each mechanism's own options. */
export type MechanismOptions =
  /** FAVOR: linear attention on the random features of `featureMap`; persistent memory optional. */
  | ({ kind: 'favor'; memorySlots: number } & FeatureMapChoice)
  /** Exact softmax attention; persistent memory optional. */
  | { kind: 'softmax'; memorySlots: number }
  /** FAVOR+ with a learned relative-position bias (rpeFavorAttention), up to maxLength positions. */
  | ({ kind: 'rpe'; maxLength: number } & FeatureMapChoice)
  /** Combiner's structured factorization (combinerAttention). */
  | { kind: 'combiner'; variant: CombinerVariant }
  /** Gated attention under FAVOR: relaxed gates in training, hard at inference, a sparsity penalty. */
  | ({ kind: 'gated'; penalty: number; temperature: number } & FeatureMapChoice)
  /** Relation-aware attention on clipped relative positions. */
  | { kind: 'relation'; maxDistance: number }
  /** Bayesian attention: sampled weights in training, a KL term. */
  | { kind: 'bayesian'; weibullShape: number; klWeight: number };

export type AttentionKind = MechanismOptions['kind'];

/** The sizes a mechanism's weights depend on. */
export interface MechanismDims {
  dim: number;
  heads: number;
  dimHead: number;
}

/** A weight a mechanism adds to the layer: its name (as saved), shape and initial values. */
export interface WeightSpec {
  name: string;
  shape: number[];
  /** 'small': normal(0, 0.02) seeded by `seedOffset`; 'zeros'; or a constant. */
  init:
    | { kind: 'small'; seedOffset: number }
    | { kind: 'zeros' }
    | { kind: 'constant'; value: number };
}

/** What a mechanism gets to attend with. */
export interface AttendContext {
  /** [B, H, N, dh] */
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  /** The block's (normalised) input [B, N, dim], for mechanisms that read it (gates). */
  x: tf.Tensor;
  /** [B, N] padding mask (1 keep, 0 pad), or undefined. */
  mask: tf.Tensor | undefined;
  causal: boolean;
  training: boolean;
  /** The mechanism's own weights by name, read for this call. */
  weights: Record<string, tf.Tensor>;
  /** The layer's FAVOR+ projection [m, dh] as a feature map (the caller disposes it). */
  featureMap(choice: FeatureMapChoice): FeatureMap;
  /** Clipped relative-position ids [N, N] (cached per length by the layer). */
  relationIds(N: number, maxDistance: number): tf.Tensor;
  /** A fresh seed per call, for the mechanisms that sample. */
  nextSeed(): number;
  /** The layer's name, for messages. */
  name: string;
}

/** One mechanism of the registry. */
export interface Mechanism<O extends MechanismOptions> {
  /** Whether attend returns an auxiliary training loss (the layers register it with addLoss). */
  auxiliaryLoss: boolean;
  /** The weights it adds to the layer (besides q, k, v, out and the projection). */
  weights(o: O, d: MechanismDims): WeightSpec[];
  /** q, k, v → [B, H, N, dh], with its auxiliary loss where it has one. */
  attend(o: O, c: AttendContext): { output: tf.Tensor; auxLoss?: tf.Scalar };
}

type Registry = { [K in AttentionKind]: Mechanism<Extract<MechanismOptions, { kind: K }>> };

const memoryWeights = (slots: number, d: MechanismDims): WeightSpec[] =>
  slots === 0
    ? []
    : [
        {
          name: 'memory_keys',
          shape: [d.heads, slots, d.dimHead],
          init: { kind: 'small', seedOffset: 10 },
        },
        {
          name: 'memory_values',
          shape: [d.heads, slots, d.dimHead],
          init: { kind: 'small', seedOffset: 11 },
        },
      ];

const memoryOf = (c: AttendContext): PersistentMemory | undefined =>
  c.weights.memory_keys === undefined
    ? undefined
    : { keys: c.weights.memory_keys, values: c.weights.memory_values! };

/** Runs `use` with the layer's feature map, disposed after. */
function withMap<T>(c: AttendContext, choice: FeatureMapChoice, use: (phi: FeatureMap) => T): T {
  const phi = c.featureMap(choice);
  try {
    return use(phi);
  } finally {
    (phi as { dispose?(): void }).dispose?.();
  }
}

export const MECHANISMS: Registry = {
  favor: {
    auxiliaryLoss: false,
    weights: (o, d) => memoryWeights(o.memorySlots, d),
    attend: (o, c) => ({
      output: withMap(c, o, (featureMap) =>
        favorAttention(c.q, c.k, c.v, {
          featureMap,
          causal: c.causal,
          mask: c.mask,
          memory: memoryOf(c),
        }),
      ),
    }),
  },
  softmax: {
    auxiliaryLoss: false,
    weights: (o, d) => memoryWeights(o.memorySlots, d),
    attend: (_, c) => ({
      output: softmaxAttention(c.q, c.k, c.v, {
        causal: c.causal,
        mask: c.mask,
        memory: memoryOf(c),
      }),
    }),
  },
  rpe: {
    auxiliaryLoss: false,
    weights: (o, d) => [
      { name: 'relative_bias', shape: [d.heads, 2 * o.maxLength - 1], init: { kind: 'zeros' } },
    ],
    attend: (o, c) => {
      const [, H, N] = c.q.shape as [number, number, number, number];
      if (N > o.maxLength) {
        throw new RangeError(`${c.name}: sequence length ${N} exceeds maxLength ${o.maxLength}`);
      }
      // offsets −(N−1) … N−1 sit at maxLength − N … maxLength + N − 2 of the bias weight
      const relativeBias = tf.slice(c.weights.relative_bias!, [0, o.maxLength - N], [H, 2 * N - 1]);
      return {
        output: withMap(c, o, (featureMap) =>
          rpeFavorAttention(c.q, c.k, c.v, {
            featureMap,
            relativeBias,
            causal: c.causal,
            mask: c.mask,
          }),
        ),
      };
    },
  },
  combiner: {
    auxiliaryLoss: false,
    weights: () => [],
    attend: (o, c) => ({
      output: combinerAttention(c.q, c.k, c.v, {
        variant: o.variant,
        causal: c.causal,
        mask: c.mask,
      }),
    }),
  },
  gated: {
    auxiliaryLoss: true,
    weights: (_, d) => [
      { name: 'gate_kernel', shape: [d.dim, 1], init: { kind: 'small', seedOffset: 12 } },
      // gates start mostly open: σ(2) ≈ 0.88
      { name: 'gate_bias', shape: [1], init: { kind: 'constant', value: 2 } },
    ],
    attend: (o, c) => {
      const [B, N] = c.x.shape as [number, number];
      const gates = tf.sigmoid(
        tf.reshape(dense(c.x, c.weights.gate_kernel!, c.weights.gate_bias!), [B, N]),
      );
      const r = withMap(c, o, (featureMap) =>
        gatedAttention(c.q, c.k, c.v, {
          gates,
          mode: c.training ? 'relaxed' : 'hard',
          temperature: o.temperature,
          seed: c.nextSeed(),
          featureMap,
          causal: c.causal,
          mask: c.mask,
          returnPenalty: true,
        }),
      );
      return { output: r.output, auxLoss: tf.mul(r.penalty, o.penalty) as tf.Scalar };
    },
  },
  relation: {
    auxiliaryLoss: false,
    weights: (o, d) => [
      {
        name: 'relation_keys',
        shape: [2 * o.maxDistance + 1, d.dimHead],
        init: { kind: 'small', seedOffset: 13 },
      },
      {
        name: 'relation_values',
        shape: [2 * o.maxDistance + 1, d.dimHead],
        init: { kind: 'small', seedOffset: 14 },
      },
    ],
    attend: (o, c) => ({
      output: relationAwareAttention(c.q, c.k, c.v, {
        relations: c.relationIds(c.q.shape[2]!, o.maxDistance),
        relationKeys: c.weights.relation_keys!,
        relationValues: c.weights.relation_values!,
        causal: c.causal,
        mask: c.mask,
      }),
    }),
  },
  bayesian: {
    auxiliaryLoss: true,
    weights: (_, d) => [
      { name: 'prior_kernel', shape: [d.dimHead, 1], init: { kind: 'small', seedOffset: 15 } },
    ],
    attend: (o, c) => {
      const [B, H, N] = c.k.shape as [number, number, number, number];
      const priorLogits = tf.reshape(dense(c.k, c.weights.prior_kernel!), [B, H, N]);
      const r = bayesianAttention(c.q, c.k, c.v, {
        training: c.training,
        shape: o.weibullShape,
        seed: c.nextSeed(),
        causal: c.causal,
        mask: c.mask,
        priorLogits,
      });
      return { output: r.output, auxLoss: tf.mul(r.kl, o.klWeight) as tf.Scalar };
    },
  },
};

/** The feature map a layer names, on its projection [m, dh]. */
export function namedFeatureMap(projection: tf.Tensor2D, choice: FeatureMapChoice): FeatureMap {
  const eps = choice.featureEps;
  switch (choice.featureMap) {
    case 'hyperbolic':
      return hyperbolicSoftmax({ projection, eps });
    case 'trig':
      return trigSoftmax({ projection });
    case 'relu':
    case 'elu+1':
      return generalized({ projection, fn: choice.featureMap });
    default:
      return positiveSoftmax({ projection, eps });
  }
}

/**
 * The registry entry of a mechanism's options (one lookup, typed for any member of the union).
 *
 * @param o - the mechanism's options
 */
export function mechanismOf(o: MechanismOptions): Mechanism<MechanismOptions> {
  return MECHANISMS[o.kind] as Mechanism<MechanismOptions>;
}
