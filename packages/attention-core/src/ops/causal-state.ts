import {
  assertOptions,
  assertTensor,
  describeValue,
  type FeatureMap,
  isTensor,
  type KeyParts,
  matMul,
  shapeString,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { expBelow, keyFloor, NO_KEY_YET, safeDivide } from '../tensor/masking.js';
import { assertAllocatable, validateNonNegative, validateQkv } from '../tensor/validate.js';
import { assertFeatureMap } from './favor/settings.js';

/**
 * Recurrent state of causal linear attention for decoding one token at a time, with constant
 * work per token. With key features split as φ(k_j; s) = exp(ℓ_j − s)·base_j + floor (see
 * FeatureMap.keyParts), the state holds, for the running stabilizer r = max_{j<t} ℓ_j:
 *   kv   = Σ_j exp(ℓ_j − r)·base_j [v_j, 1]ᵀ   [B, H, m', dv+1]
 *   vSum = Σ_j [v_j, 1]                         [B, H, 1, dv+1]
 * When a new key raises r, kv is rescaled by exp(r_old − r_new); the output uses
 * S = kv + floor·1 vSumᵀ, i.e. key features stabilized with s = r, exactly as the causal call on
 * the same prefix computes them.
 */
export interface CausalState {
  readonly kv: tf.Tensor4D;
  readonly ref: tf.Tensor4D;
  readonly vSum: tf.Tensor4D;
  /** Tokens consumed so far. */
  readonly steps: number;
  dispose(): void;
}

export interface CausalStateOptions {
  batch: number;
  heads: number;
  /** m' of the feature map (featureMap.numFeatures). */
  numFeatures: number;
  valueDim: number;
}

function makeState(
  kv: tf.Tensor4D,
  ref: tf.Tensor4D,
  vSum: tf.Tensor4D,
  steps: number,
): CausalState {
  return { kv, ref, vSum, steps, dispose: () => tf.dispose([kv, ref, vSum]) };
}

/**
 * An empty decoding state.
 *
 * @param opts - the state's sizes `{ batch, heads, numFeatures, valueDim }` (numFeatures: m' of the feature map used with it)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
 * import { causalState, favorCausalStep } from '@kernel-attention/core';
 * const featureMap = softmaxKernelFeatures(16, 64, { seed: 0 });
 * let state = causalState({ batch: 1, heads: 2, numFeatures: 64, valueDim: 16 });
 * const x = tf.randomNormal([1, 2, 1, 16]);
 * const { output, state: next } = favorCausalStep(state, x, x, x, { featureMap }); // output [1, 2, 1, 16]
 * state.dispose();
 * state = next;
 * ```
 */
export function causalState(opts: CausalStateOptions): CausalState {
  const fn = 'causalState';
  assertOptions(fn, opts, '{ batch, heads, numFeatures, valueDim }');
  for (const key of ['batch', 'heads', 'numFeatures', 'valueDim'] as const) {
    const v = opts?.[key];
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`${fn}: ${key} must be a positive integer, got ${String(v)}`);
  }
  const { batch: B, heads: H, numFeatures: m, valueDim: dv } = opts;
  assertAllocatable(
    fn,
    'the state [batch, heads, numFeatures, valueDim + 1]',
    B * H * m * (dv + 1),
  );
  return makeState(
    tf.zeros([B, H, m, dv + 1]),
    tf.fill([B, H, 1, 1], NO_KEY_YET),
    tf.zeros([B, H, 1, dv + 1]),
    0,
  );
}

export interface CausalStepOptions {
  /** [B, 1] (or [B]) keep flag of this token: a padded token (0) leaves the state unchanged. */
  mask?: tf.Tensor;
  /** As linearAttention's: D = φ(q)·(z + eps·1). Default 0. */
  denominatorEps?: number;
}

/**
 * One decoding step of FAVOR+ causal attention: q, k [B, H, 1, d], v [B, H, 1, dv]. Returns the
 * output for this token (what `favorAttention(..., { causal: true })` gives at this position for
 * the same prefix) and the next state. The input state is not disposed.
 *
 * @param state - the state after the previous tokens (from causalState or the previous step); not modified
 * @param q - the new queries [B, H, T, d] (T ≥ 1 tokens)
 * @param k - the new keys [B, H, T, d]
 * @param v - the new values [B, H, T, dv]
 * @param opts - `{ featureMap }`: the same feature map at every step
 */
export function favorCausalStep(
  state: CausalState,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: CausalStepOptions & { featureMap: FeatureMap },
): { output: tf.Tensor4D; state: CausalState } {
  const fn = 'favorCausalStep';
  assertOptions(fn, opts, '{ featureMap }');
  assertFeatureMap(fn, opts.featureMap);
  const phi = opts.featureMap;
  validateStep(fn, state, q, k, v, ['q', 'k', 'v']);
  return step(fn, state, k, v, opts, (kSafe) => ({
    qf: phi.features(q, 'query'),
    parts: phi.keyParts
      ? withKeyFloor(phi.keyParts(kSafe))
      : {
          base: phi.features(kSafe, 'key'),
          logScale: tf.zeros([...kSafe.shape.slice(0, 3), 1]),
          floor: 0,
        },
  }));
}

/**
 * One decoding step of causal linear attention on given features (position-local, no stabilizer):
 * qFeat, kFeat [B, H, 1, m], v [B, H, 1, dv].
 *
 * @param state - the state after the previous tokens; not modified
 * @param qFeat - features of the new queries [B, H, T, m']
 * @param kFeat - features of the new keys [B, H, T, m'] (non-negative)
 * @param v - the new values [B, H, T, dv]
 * @param opts - `{ eps }`: the denominator floor (optional)
 */
export function linearCausalStep(
  state: CausalState,
  qFeat: tf.Tensor,
  kFeat: tf.Tensor,
  v: tf.Tensor,
  opts: CausalStepOptions = {},
): { output: tf.Tensor4D; state: CausalState } {
  const fn = 'linearCausalStep';
  assertOptions(fn, opts, '{ mask?, denominatorEps? }', false);
  validateStep(fn, state, qFeat, kFeat, v, ['qFeat', 'kFeat', 'v']);
  return step(fn, state, kFeat, v, opts, (kSafe) => ({
    qf: qFeat,
    parts: { base: kSafe, logScale: tf.zeros([...kSafe.shape.slice(0, 3), 1]), floor: 0 },
  }));
}

/** keyParts with the floor attention gives them (see keyFloor), as the causal call uses. */
function withKeyFloor(parts: KeyParts): KeyParts {
  return { ...parts, floor: keyFloor(parts.floor) };
}

function validateStep(
  fn: string,
  state: CausalState,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  names: [string, string, string],
) {
  if (typeof state !== 'object' || state === null || !state.kv || state.kv.isDisposed) {
    throw new TypeError(
      `${fn}: state must be a live CausalState from causalState() or a previous step`,
    );
  }
  const shapes = validateQkv(fn, q, k, v, { causal: true, names });
  if (shapes.queryLength !== 1) {
    throw new RangeError(
      `${fn}: ${names[0]}, ${names[1]} and ${names[2]} must hold one token (length 1), got ${names[0]} ${shapeString(q.shape)}`,
    );
  }
  const [B, H, , w] = state.kv.shape;
  if (shapes.batch !== B || shapes.heads !== H || shapes.valueDim + 1 !== w) {
    throw new RangeError(
      `${fn}: inputs do not match the state (batch ${B}, heads ${H}, valueDim ${w - 1}), got ${names[2]} ${shapeString(v.shape)}`,
    );
  }
}

/** A step's mask: [batch, 1] (or [batch]) of 1 keep, 0 pad. */
function checkStepMask(fn: string, mask: tf.Tensor | undefined, B: number): void {
  if (mask === undefined) return;
  assertTensor(
    fn,
    'mask',
    mask,
    { rank: [1, 2], dtype: ['float32', 'int32', 'bool'] },
    '[batch, 1] (1 keep, 0 pad)',
  );
  if (mask.size !== B) {
    throw new RangeError(
      `${fn}: mask must have shape [batch, 1] = [${B},1], got ${shapeString(mask.shape)}`,
    );
  }
}

/** The step's query features and key parts must fit the state: float32 [B, H, 1, m] (logScale [B, H, 1, 1]). */
function checkStepFeatures(
  fn: string,
  qf: unknown,
  parts: KeyParts | undefined,
  [B, H, m]: [number, number, number],
): void {
  const ok = (t: unknown, last: number) =>
    isTensor(t) &&
    t.rank === 4 &&
    t.shape[0] === B &&
    t.shape[1] === H &&
    t.shape[2] === 1 &&
    t.shape[3] === last &&
    t.dtype === 'float32';
  if (!ok(qf, m) || !ok(parts?.base, m) || !ok(parts?.logScale, 1)) {
    throw new RangeError(
      `${fn}: the features must be float32 [batch, heads, 1, numFeatures] = [${B},${H},1,${m}] (the state's numFeatures) and keyParts' logScale [${B},${H},1,1], got query features ${describeValue(qf)}, key features ${describeValue(parts?.base)} and logScale ${describeValue(parts?.logScale)}`,
    );
  }
}

function step(
  fn: string,
  state: CausalState,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: CausalStepOptions,
  featuresOf: (k: tf.Tensor) => { qf: tf.Tensor; parts: KeyParts },
): { output: tf.Tensor4D; state: CausalState } {
  const [B, H, m, w] = state.kv.shape;
  const mask = opts.mask;
  const denominatorEps = validateNonNegative(fn, opts.denominatorEps, 'denominatorEps');
  checkStepMask(fn, mask, B);
  const out = tf.tidy(() => {
    const keep =
      mask === undefined
        ? tf.ones([B, 1, 1, 1])
        : tf.reshape(tf.cast(tf.notEqual(tf.cast(mask, 'float32'), 0), 'float32'), [B, 1, 1, 1]);
    const keepB = tf.cast(keep, 'bool');
    // a padded token's key is zeroed before φ (NaN-safe), as in the batch call
    const { qf, parts } = featuresOf(
      mask === undefined ? k : tf.where(tf.broadcastTo(keepB, k.shape), k, tf.zerosLike(k)),
    );
    checkStepFeatures(fn, qf, parts, [B, H, m]);
    const v1 = tf.concat(
      [tf.where(tf.broadcastTo(keepB, v.shape), v, tf.zerosLike(v)), tf.ones([B, H, 1, 1])],
      3,
    );
    const ell = tf.where(
      tf.broadcastTo(keepB, [B, H, 1, 1]),
      parts.logScale,
      tf.fill([B, H, 1, 1], NO_KEY_YET),
    );
    const ref = tf.maximum(state.ref, ell);
    const kScaled = tf.mul(parts.base, tf.mul(expBelow(ell, ref), keep)); // [B, H, 1, m]
    const kv = tf.add(
      tf.mul(state.kv, expBelow(state.ref, ref)),
      matMul(kScaled, v1, true, false), // kScaledᵀ v1: [B, H, m, w]
    );
    const vSum = tf.add(state.vSum, tf.mul(v1, keep));
    // S = kv + floor·1·vSumᵀ  ⇒  q·S = q·kv + floor·(Σ_f q_f)·vSum
    let numDen = matMul(qf as tf.Tensor4D, kv); // [B, H, 1, w]
    if (parts.floor !== 0)
      numDen = tf.add(numDen, tf.mul(tf.mul(tf.sum(qf, -1, true), parts.floor), vSum));
    const num = tf.slice(numDen, [0, 0, 0, 0], [B, H, 1, w - 1]);
    let den = tf.slice(numDen, [0, 0, 0, w - 1], [B, H, 1, 1]);
    if (denominatorEps !== 0) den = tf.add(den, tf.mul(tf.sum(qf, -1, true), denominatorEps));
    return { output: safeDivide(num, den) as tf.Tensor4D, kv, ref, vSum };
  });
  return {
    output: out.output,
    state: makeState(
      out.kv as tf.Tensor4D,
      out.ref as tf.Tensor4D,
      out.vSum as tf.Tensor4D,
      state.steps + 1,
    ),
  };
}
