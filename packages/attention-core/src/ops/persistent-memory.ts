import { assertTensor, shapeString } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionShapes, CheckedInputs } from '../tensor/validate.js';

/**
 * Persistent memory (Sukhbaatar et al. 2019, "Augmenting Self-attention with Persistent Memory"):
 * N learned key/value slots per head, joined into the attention of every query — visible to all
 * queries, also when causal, with no positional term. An option of softmaxAttention and
 * favorAttention.
 */
export interface PersistentMemory {
  /** Memory keys [H, N, d] (the same for every batch item). */
  keys: tf.Tensor;
  /** Memory values [H, N, dv]. */
  values: tf.Tensor;
}

/** Checks memory against the call's shapes; returns N (0 for an empty memory). */
export function validateMemory(fn: string, memory: unknown, s: AttentionShapes): number {
  if (typeof memory !== 'object' || memory === null) {
    throw new TypeError(
      `${fn}: memory must be { keys: [H, N, d], values: [H, N, dv] }, got ${memory === null ? 'null' : typeof memory}`,
    );
  }
  const { keys, values } = memory as Partial<PersistentMemory>;
  assertTensor(fn, 'memory.keys', keys, { rank: 3, dtype: 'float32' }, '[heads, slots, dim]');
  assertTensor(
    fn,
    'memory.values',
    values,
    { rank: 3, dtype: 'float32' },
    '[heads, slots, valueDim]',
  );
  const [H, N, d] = keys.shape as [number, number, number];
  const [Hv, Nv, dv] = values.shape as [number, number, number];
  if (H !== s.heads || Hv !== s.heads) {
    throw new RangeError(
      `${fn}: memory.keys and memory.values must have one slot set per head (${s.heads}), got memory.keys ${shapeString(keys.shape)} and memory.values ${shapeString(values.shape)}`,
    );
  }
  if (Nv !== N) {
    throw new RangeError(
      `${fn}: memory.keys and memory.values must have the same number of slots, got memory.keys ${shapeString(keys.shape)} and memory.values ${shapeString(values.shape)}`,
    );
  }
  if (d !== s.dim || dv !== s.valueDim) {
    throw new RangeError(
      `${fn}: memory.keys must end in the key dimension ${s.dim} and memory.values in the value dimension ${s.valueDim}, got memory.keys ${shapeString(keys.shape)} and memory.values ${shapeString(values.shape)}`,
    );
  }
  return N;
}

/** An attention call with the memory slots joined in (see joinMemory). */
export interface MemoryJoined {
  /** The call's inputs with the slots in front of the keys (and placeholder queries, causal). */
  inputs: CheckedInputs;
  /** How many placeholder query rows lead the output (N when causal, else 0). */
  placeholders: number;
}

/**
 * Joins N memory slots into the call: keys [M_k; K], values [M_v; V], the memory never padded.
 * Bidirectional, that is all. Causal, N placeholder (zero) queries go in front so that query i,
 * now at position N + i, sees the N memory slots and keys 0..i under the ordinary causal rule —
 * under FAVOR+ the memory is then the first part of the carried key-value state and normaliser,
 * at a cost independent of L; dropPlaceholders removes their output rows. N = 0 (or no memory)
 * leaves the inputs as they are. Call inside a tidy.
 *
 * @param inputs - the checked call
 * @param memory - the slots, or undefined
 * @param causal - whether the call is causal
 */
export function joinMemory(
  inputs: CheckedInputs,
  memory: PersistentMemory | undefined,
  causal: boolean,
): MemoryJoined {
  const N = memory === undefined ? 0 : memory.keys.shape[1]!;
  if (memory === undefined || N === 0) return { inputs, placeholders: 0 };
  const { q, k, v, mask, shapes } = inputs;
  const [B, H, , d] = q.shape as [number, number, number, number];
  const dv = v.shape[3]!;
  const mk = tf.broadcastTo(tf.expandDims(memory.keys, 0), [B, H, N, d]);
  const mv = tf.broadcastTo(tf.expandDims(memory.values, 0), [B, H, N, dv]);
  const placeholders = causal ? N : 0;
  return {
    inputs: {
      q: causal ? tf.concat([tf.zeros([B, H, N, d]), q], 2) : q,
      k: tf.concat([mk, k], 2),
      v: tf.concat([mv, v], 2),
      mask:
        mask === undefined
          ? undefined
          : tf.concat([tf.ones([B, N]), tf.cast(tf.notEqual(mask, 0), 'float32')], 1),
      shapes: {
        ...shapes,
        queryLength: shapes.queryLength + placeholders,
        keyLength: shapes.keyLength + N,
      },
    },
    placeholders,
  };
}

/**
 * The output of a joined call without its placeholder rows: [B, H, Lq, dv].
 *
 * @param out - the joined call's output
 * @param joined - what joinMemory returned
 */
export function dropPlaceholders(out: tf.Tensor4D, joined: MemoryJoined): tf.Tensor4D {
  const n = joined.placeholders;
  if (n === 0) return out;
  const [B, H, L, dv] = out.shape;
  return tf.slice(out, [0, 0, n, 0], [B, H, L - n, dv]);
}
