// The property-based part of the shared parity suite: every backend runs it (see runParitySuite).
import {
  denseExponentialSoftmax,
  type FeatureMap,
  generalized,
  hyperbolicSoftmax,
  optimizedPositiveSoftmax,
  positiveSoftmax,
  trigSoftmax,
} from '@kernel-attention/feature-maps';
import { createRng, gaussianIid, gaussianOrthogonal } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bayesianAttention } from '../mechanisms/bayesian-attention.js';
import { combinerAttention } from '../mechanisms/combiner-attention.js';
import { gatedAttention } from '../mechanisms/gated-attention.js';
import {
  clippedRelativePositions,
  relationAwareAttention,
} from '../mechanisms/relation-aware-attention.js';
import { rpeFavorAttention } from '../mechanisms/rpe-favor-attention.js';
import { toeplitzMatmul } from '../mechanisms/toeplitz.js';
import { causalState, favorCausalStep, linearCausalStep } from '../ops/causal-state.js';
import { favorAttention } from '../ops/favor/favor-attention.js';
import { linearAttention } from '../ops/linear-attention.js';
import { softmaxAttention } from '../ops/softmax-attention.js';
import { SYNC_READ_BACKENDS } from './backends.js';

/**
 * Property-based checks of every public op (fast-check, a fixed seed per op, `runs` cases each;
 * on failure fast-check's message carries the seed and path that reproduce the case):
 *
 * - output: finite and of the documented shape, for random shapes (L = 1, odd L, d not a power of
 *   two, m < d and m not a multiple of d), scales of q and k from 1e-3 to 1e3, padding masks with
 *   fully padded rows, every exported feature map — or an error that names the argument;
 * - hull: every positive-weight estimator's output lies in the convex hull of the values its query
 *   sees (checked on each coordinate and on random directions; 0 where it sees none);
 * - causality: changing keys and values after position i leaves outputs 0..i bit-for-bit unchanged;
 * - the recurrent step API equals the causal call on every prefix;
 * - chunkSize and featureBlockSize do not change results;
 * - masking a key equals removing it;
 * - batches and heads never mix: changing one (batch, head) leaves the others bit-for-bit unchanged.
 *
 * cpu and wasm check every property on every case; the GPU backends (software-rendered in CI)
 * check output and hull on every case and the equality properties in turn.
 */
export interface PropertySuiteOptions {
  backend: string;
  /** Cases per op (default: KA_FUZZ_RUNS, else 200). */
  runs?: number;
  /** Relative tolerance of the equality properties. */
  tolerance: number;
}

/**
 * Cases per op where a configuration repeats a backend that another configuration already runs
 * with the full count (the same backend in Chromium as in Node; WebGPU with its fused kernels):
 * the properties stay checked there, at a cost that keeps the suite within its time budget.
 */
export const REPEATED_BACKEND_RUNS = 20;

/** Cases per op: `pnpm fuzz` sets KA_FUZZ_RUNS (2,000); CI runs 200. */
export function propertyRuns(): number {
  const env = typeof process !== 'undefined' ? process.env.KA_FUZZ_RUNS : undefined;
  const n = env === undefined ? 200 : Number(env);
  return Number.isInteger(n) && n > 0 ? n : 200;
}

/** Fixed seeds: one per op, so a failure names the op's own seed. */
const SEED = 20261127;

// ---------------------------------------------------------------------------------------------
// Random cases

interface Shape {
  B: number;
  H: number;
  L: number;
  d: number;
  dv: number;
  m: number;
}

/**
 * Shapes: every dimension small and irregular. GPU backends compile one program per shape, so
 * they draw from a smaller pool (still with L = 1, odd L, d = 3, 5, m < d, m ∤ d).
 */
function shapeArb(backend: string, maxGpuLength = 9): fc.Arbitrary<Shape> {
  if (backend === 'webgl' || backend === 'webgpu') {
    // every new shape compiles new programs (slow on a software GPU): a few shapes, still with
    // L = 1, odd L, d = 3 (not a power of two), m < d and m ∤ d
    return fc.record({
      B: fc.constantFrom(1, 2),
      H: fc.constant(1),
      L: fc.constantFrom(...[1, 5, 9].filter((n) => n <= maxGpuLength)),
      d: fc.constant(3),
      dv: fc.constant(3),
      m: fc.constantFrom(2, 7),
    });
  }
  return fc.record({
    B: fc.integer({ min: 1, max: 2 }),
    H: fc.integer({ min: 1, max: 2 }),
    L: fc.integer({ min: 1, max: 13 }),
    d: fc.integer({ min: 1, max: 7 }),
    dv: fc.integer({ min: 1, max: 4 }),
    m: fc.integer({ min: 1, max: 11 }),
  });
}

/** Standard deviation of q and k: 10^(e/4) for e in [−12, 12] (1e-3 … 1e3). */
const scaleArb = fc.integer({ min: -12, max: 12 }).map((e) => 10 ** (e / 4));

/** A padding mask for [B, L]: none, random, or with one batch item fully padded. */
type MaskKind = 'none' | 'random' | 'fully-padded';
const maskArb = fc.constantFrom<MaskKind>('none', 'random', 'fully-padded');

interface Case {
  shape: Shape;
  scale: number;
  mask: MaskKind;
  causal: boolean;
  /** seed of the data drawn with our PRNG */
  data: number;
}

function caseArb(backend: string, causal?: boolean, maxGpuLength?: number): fc.Arbitrary<Case> {
  return fc.record({
    shape: shapeArb(backend, maxGpuLength),
    scale: scaleArb,
    mask: maskArb,
    causal: causal === undefined ? fc.boolean() : fc.constant(causal),
    data: fc.integer({ min: 0, max: 2 ** 30 }),
  });
}

/** Gaussian values from our PRNG (cheaper to draw and shrink than arrays of doubles). */
function gaussian(n: number, seed: number, scale: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

interface Inputs {
  q: tf.Tensor4D;
  k: tf.Tensor4D;
  v: tf.Tensor4D;
  mask: tf.Tensor2D | undefined;
  /** [B][L] 0/1 */
  keep: number[][];
  qv: Float32Array;
  kv: Float32Array;
  vv: Float32Array;
}

function inputs(c: Case, qDim = c.shape.d): Inputs {
  const { B, H, L, d, dv } = c.shape;
  const qv = gaussian(B * H * L * qDim, c.data, c.scale);
  const kv = gaussian(B * H * L * d, c.data + 1, c.scale);
  const vv = gaussian(B * H * L * dv, c.data + 2, 1);
  const rng = createRng(c.data + 3);
  const keep = Array.from({ length: B }, (_, b) =>
    Array.from({ length: L }, () =>
      c.mask === 'none'
        ? 1
        : c.mask === 'fully-padded' && b === B - 1
          ? 0
          : rng.uniform() < 0.7
            ? 1
            : 0,
    ),
  );
  return {
    q: tf.tensor4d(qv, [B, H, L, qDim]),
    k: tf.tensor4d(kv, [B, H, L, d]),
    v: tf.tensor4d(vv, [B, H, L, dv]),
    mask: c.mask === 'none' ? undefined : tf.tensor2d(keep),
    keep,
    qv,
    kv,
    vv,
  };
}

// ---------------------------------------------------------------------------------------------
// Feature maps

const MAP_KINDS = [
  'positive',
  'positive-eps0',
  'positive-iid',
  'hyperbolic',
  'trig',
  'relu',
  'elu+1',
  'exp',
  'custom',
  'oprf',
  'saderf',
  'aderf',
  'sderf',
] as const;
type MapKind = (typeof MAP_KINDS)[number];

/** Maps whose weights φ(q)·φ(k) are never negative (their attention is a convex combination). */
const POSITIVE_WEIGHTS: ReadonlySet<MapKind> = new Set(
  MAP_KINDS.filter((k) => k !== 'trig' && k !== 'custom'),
);

/** Maps fitted on the CPU in Float64 (they need synchronous reads). */
const CPU_FITS: ReadonlySet<MapKind> = new Set(['aderf', 'sderf']);

function makeMap(
  kind: MapKind,
  d: number,
  m: number,
  seed: number,
): FeatureMap & { dispose(): void } {
  const projection = gaussianOrthogonal(m, d, { seed });
  switch (kind) {
    case 'positive':
      return positiveSoftmax({ projection });
    case 'positive-eps0':
      return positiveSoftmax({ projection, eps: 0 });
    case 'positive-iid':
      return positiveSoftmax({ projection: gaussianIid(m, d, { seed }), eps: 1e-4 });
    case 'hyperbolic':
      return hyperbolicSoftmax({ projection });
    case 'trig':
      return trigSoftmax({ projection });
    case 'relu':
    case 'elu+1':
    case 'exp':
      return generalized({ projection, fn: kind });
    case 'custom':
      // a user function (x·tanh x) on the projection: signed features, no stabilizer
      return generalized({ projection, fn: (t) => tf.mul(t, tf.tanh(t)), kernelEps: 0 });
    case 'oprf':
      return optimizedPositiveSoftmax({ projection });
    default:
      return denseExponentialSoftmax({ variant: kind, projection });
  }
}

// ---------------------------------------------------------------------------------------------
// Checks (all on Float32 data read back)

async function read(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

function expectShape(t: tf.Tensor, shape: number[], what: string): void {
  if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
    throw new Error(`${what}: shape [${t.shape}] instead of [${shape}]`);
  }
}

function expectFinite(x: Float32Array, what: string): void {
  const bad = x.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${what}: entry ${bad} is ${x[bad]}`);
}

/**
 * out [B, H, L, dv] lies in the convex hull of the rows of v its query sees (visible(b, i, j)),
 * checked on each coordinate and on 3 random directions, with a float32 margin; 0 where none.
 */
function expectInHull(
  out: Float32Array,
  v: Float32Array,
  s: Shape,
  visible: (b: number, i: number, j: number) => boolean,
  what: string,
  Lq = s.L,
): void {
  const { B, H, L, dv } = s;
  const rng = createRng(7);
  const dirs = [
    ...Array.from({ length: dv }, (_, t) =>
      Array.from({ length: dv }, (_, u) => (u === t ? 1 : 0)),
    ),
    ...Array.from({ length: 3 }, () => Array.from({ length: dv }, () => rng.normal())),
  ];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < Lq; i++) {
        const o = ((b * H + h) * Lq + i) * dv;
        const seen: number[] = [];
        for (let j = 0; j < L; j++) if (visible(b, i, j)) seen.push(j);
        if (seen.length === 0) {
          for (let t = 0; t < dv; t++) {
            if (out[o + t] !== 0)
              throw new Error(
                `${what}: query (${b},${h},${i}) sees no key but gives ${out[o + t]}`,
              );
          }
          continue;
        }
        for (const dir of dirs) {
          let lo = Number.POSITIVE_INFINITY;
          let hi = Number.NEGATIVE_INFINITY;
          let scale = 0;
          for (const j of seen) {
            let p = 0;
            for (let t = 0; t < dv; t++) {
              const x = v[((b * H + h) * L + j) * dv + t]!;
              p += dir[t]! * x;
              scale = Math.max(scale, Math.abs(x));
            }
            lo = Math.min(lo, p);
            hi = Math.max(hi, p);
          }
          let p = 0;
          for (let t = 0; t < dv; t++) p += dir[t]! * out[o + t]!;
          const margin = 1e-4 * scale * dv + 1e-6;
          if (!(p >= lo - margin && p <= hi + margin)) {
            throw new Error(
              `${what}: query (${b},${h},${i}) lies outside the hull of the ${seen.length} values it sees: ${p} not in [${lo}, ${hi}] along [${dir.map((x) => x.toFixed(2))}]`,
            );
          }
        }
      }
    }
  }
}

/** a and b equal within rel·max|b| (+ a tiny absolute floor). */
function expectClose(a: Float32Array, b: Float32Array, rel: number, what: string): void {
  let scale = 0;
  for (const x of b) scale = Math.max(scale, Math.abs(x));
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i]! - b[i]!) <= rel * scale + 1e-6)) {
      throw new Error(`${what}: entry ${i}: ${a[i]} vs ${b[i]} (tolerance ${rel} of ${scale})`);
    }
  }
}

/** Entries of out [B, H, L, w] at positions 0..i of every (b, h) equal, bit for bit. */
function expectPrefixIdentical(
  a: Float32Array,
  b: Float32Array,
  s: Shape,
  w: number,
  i: number,
  what: string,
): void {
  const { B, H, L } = s;
  for (let g = 0; g < B * H; g++) {
    for (let p = 0; p <= i; p++) {
      for (let t = 0; t < w; t++) {
        const at = (g * L + p) * w + t;
        if (a[at] !== b[at] && !(Number.isNaN(a[at]!) && Number.isNaN(b[at]!))) {
          throw new Error(
            `${what}: output (group ${g}, position ${p}) moved from ${a[at]} to ${b[at]} when keys and values after position ${i} changed`,
          );
        }
      }
    }
  }
}

/** x [B, H, L, w] with the entries after position i (all groups) replaced by fresh values. */
function changedAfter(
  x: Float32Array,
  s: Shape,
  w: number,
  i: number,
  seed: number,
  scale: number,
): Float32Array {
  const out = Float32Array.from(x);
  const rng = createRng(seed);
  for (let g = 0; g < s.B * s.H; g++)
    for (let p = i + 1; p < s.L; p++)
      for (let t = 0; t < w; t++)
        out[(g * s.L + p) * w + t] = scale * rng.normal() * (1 + rng.uniform() * 10);
  return out;
}

/** The case's q, k, v with every entry after position i replaced (causality checks). */
function inputsChangedAfter(
  x: Inputs,
  c: Case,
  i: number,
): { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor } {
  const s = c.shape;
  return {
    q: tf.tensor4d(changedAfter(x.qv, s, x.q.shape[3], i, c.data + 9, c.scale), x.q.shape),
    k: tf.tensor4d(changedAfter(x.kv, s, s.d, i, c.data + 10, c.scale), x.k.shape),
    v: tf.tensor4d(changedAfter(x.vv, s, s.dv, i, c.data + 11, 1), x.v.shape),
  };
}

/** x [B, H, L, w] with group (0, 0)'s entries replaced by fresh values. */
function changedGroup0(
  x: Float32Array,
  s: Shape,
  w: number,
  seed: number,
  scale: number,
): Float32Array {
  const out = Float32Array.from(x);
  const rng = createRng(seed);
  for (let i = 0; i < s.L * w; i++) out[i] = scale * rng.normal();
  return out;
}

/** Entries of every group but (0, 0) equal, bit for bit. */
function expectOtherGroupsIdentical(
  a: Float32Array,
  b: Float32Array,
  s: Shape,
  w: number,
  what: string,
): void {
  const size = s.L * w;
  for (let i = size; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(a[i]!) && Number.isNaN(b[i]!))) {
      throw new Error(
        `${what}: (batch, head) group ${Math.floor(i / size)} changed when only group 0 did (entry ${i}: ${a[i]} vs ${b[i]})`,
      );
    }
  }
}

function visibleOf(keep: number[][], causal: boolean) {
  return (b: number, i: number, j: number) => keep[b]![j] !== 0 && (!causal || j <= i);
}

/** Runs an async fast-check property in a tfjs memory scope per case; checks nothing leaks. */
async function assertProperty<T>(
  arb: fc.Arbitrary<T>,
  seed: number,
  runs: number,
  body: (value: T) => Promise<void>,
): Promise<void> {
  const before = tf.memory().numTensors;
  await fc.assert(
    fc.asyncProperty(arb, async (value) => {
      tf.engine().startScope();
      try {
        await body(value);
      } finally {
        tf.engine().endScope();
      }
    }),
    { seed, numRuns: runs, endOnFailure: true },
  );
  expect(tf.memory().numTensors).toBe(before);
}

// ---------------------------------------------------------------------------------------------
// The suite

export function runPropertySuite(opts: PropertySuiteOptions): void {
  const { backend, tolerance } = opts;
  const runs = opts.runs ?? propertyRuns();
  const sync = SYNC_READ_BACKENDS.includes(backend);
  const timeout = 600_000;
  const eqTol = Math.max(tolerance, 1e-4) * 5;
  // GPU backends (software-rendered here: every kernel costs a dispatch) check finiteness, shape
  // and the hull on every case, and one of the op's equality properties in turn (case k checks
  // property k mod 3); cpu and wasm check them all on every case
  const gpu = backend === 'webgl' || backend === 'webgpu';
  const check = (at: number, property: number) => !gpu || at % 3 === property;

  describe(`properties on ${backend} (${runs} cases per op, fast-check seed ${SEED})`, () => {
    it(
      `favorAttention, every feature map: finite, in the hull, causal bit for bit, chunk/block invariant, masking = removing, no mixing`,
      async () => {
        const arb = fc.record({
          c: caseArb(backend),
          kind: fc.constantFrom(...MAP_KINDS),
          chunk: fc.integer({ min: 1, max: 6 }),
          at: fc.nat(),
        });
        await assertProperty(arb, SEED + 1, runs, async ({ c, kind, chunk, at }) => {
          const s = c.shape;
          const phi = makeMap(kind, s.d, s.m, c.data);
          try {
            const x = inputs(c);
            const call = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, extra: object = {}) =>
              favorAttention(q, k, v, {
                featureMap: phi,
                causal: c.causal,
                mask: x.mask,
                ...extra,
              });
            if (CPU_FITS.has(kind) && !sync && !c.causal) {
              // the ADERF/SDERF fits run on the CPU: on WebGPU the op says so
              expect(() => call(x.q, x.k, x.v)).toThrow(
                /needs synchronous reads|synchronous reads/,
              );
              return;
            }
            const out = call(x.q, x.k, x.v);
            expectShape(out, [s.B, s.H, s.L, s.dv], kind);
            const o = await read(out);
            expectFinite(o, `favorAttention(${kind})`);
            if (POSITIVE_WEIGHTS.has(kind))
              expectInHull(o, x.vv, s, visibleOf(x.keep, c.causal), `favorAttention(${kind})`);
            const i = at % s.L;
            if (c.causal && check(at, 0)) {
              const later = inputsChangedAfter(x, c, i);
              expectPrefixIdentical(
                o,
                await read(call(later.q, later.k, later.v)),
                s,
                s.dv,
                i,
                `favorAttention(${kind}) causal`,
              );
              expectClose(
                await read(call(x.q, x.k, x.v, { chunkSize: chunk })),
                o,
                eqTol,
                `favorAttention(${kind}) chunkSize ${chunk}`,
              );
            } else if (!c.causal && check(at, 0)) {
              expectClose(
                await read(call(x.q, x.k, x.v, { featureBlockSize: chunk })),
                o,
                eqTol,
                `favorAttention(${kind}) featureBlockSize ${chunk}`,
              );
            }
            if (s.B * s.H > 1 && check(at, 1)) {
              const q2 = tf.tensor4d(changedGroup0(x.qv, s, s.d, c.data + 12, c.scale), x.q.shape);
              const k2 = tf.tensor4d(changedGroup0(x.kv, s, s.d, c.data + 13, c.scale), x.k.shape);
              expectOtherGroupsIdentical(
                o,
                await read(call(q2, k2, x.v)),
                s,
                s.dv,
                `favorAttention(${kind})`,
              );
            }
            // causal: masking key j = removing position j (query j dropped too; the outputs of
            // the other queries keep their order)
            if (c.causal && s.L > 1 && c.mask === 'none' && check(at, 2)) {
              const j = at % s.L;
              const keepJ = tf
                .tensor2d([Array.from({ length: s.L }, (_, t) => (t === j ? 0 : 1))])
                .tile([s.B, 1]) as tf.Tensor2D;
              const others = Array.from({ length: s.L }, (_, t) => t).filter((t) => t !== j);
              const idx = tf.tensor1d(others, 'int32');
              const [masked, removed] = await Promise.all(
                [
                  tf.gather(
                    favorAttention(x.q, x.k, x.v, { featureMap: phi, causal: true, mask: keepJ }),
                    idx,
                    2,
                  ),
                  favorAttention(
                    tf.gather(x.q, idx, 2),
                    tf.gather(x.k, idx, 2),
                    tf.gather(x.v, idx, 2),
                    { featureMap: phi, causal: true },
                  ),
                ].map(read),
              );
              expectClose(
                masked!,
                removed!,
                eqTol * 10,
                `favorAttention(${kind}) causal masked key ${j} vs removed`,
              );
            }
            // masking key j = removing it (bidirectional; one batch item, unmasked otherwise)
            if (!c.causal && s.L > 1 && c.mask === 'none' && check(at, 2)) {
              const j = at % s.L;
              const keepJ = tf
                .tensor2d([Array.from({ length: s.L }, (_, t) => (t === j ? 0 : 1))])
                .tile([s.B, 1]) as tf.Tensor2D;
              const masked = await read(
                favorAttention(x.q, x.k, x.v, { featureMap: phi, mask: keepJ }),
              );
              const others = Array.from({ length: s.L }, (_, t) => t).filter((t) => t !== j);
              const idx = tf.tensor1d(others, 'int32');
              const removed = await read(
                favorAttention(x.q, tf.gather(x.k, idx, 2), tf.gather(x.v, idx, 2), {
                  featureMap: phi,
                }),
              );
              // data-dependent maps fit to the keys they see: the fit excludes a masked key, so it
              // equals the fit without it
              expectClose(
                masked,
                removed,
                eqTol * 10,
                `favorAttention(${kind}) masked key ${j} vs removed`,
              );
            }
          } finally {
            phi.dispose();
          }
        });
      },
      timeout,
    );

    it(
      'favorCausalStep and linearCausalStep equal the causal call on every prefix',
      async () => {
        // data-dependent maps fit only from causalFitLength (128) on: these short calls use them unfitted
        const kinds = MAP_KINDS;
        // GPU: sequences of up to 5 steps (each step is a round of kernel dispatches)
        const arb = fc.record({ c: caseArb(backend, true, 5), kind: fc.constantFrom(...kinds) });
        await assertProperty(arb, SEED + 2, runs, async ({ c, kind }) => {
          const s = c.shape;
          const phi = makeMap(kind, s.d, s.m, c.data);
          try {
            const x = inputs(c);
            // the steps' outputs [B, H, 1, dv] concatenated along positions: one read per case
            type Step = { output: tf.Tensor; state: ReturnType<typeof causalState> };
            const run = (
              width: number,
              step: (st: ReturnType<typeof causalState>, t: number, mask?: tf.Tensor) => Step,
            ) => {
              let st = causalState({ batch: s.B, heads: s.H, numFeatures: width, valueDim: s.dv });
              const outs: tf.Tensor[] = [];
              for (let t = 0; t < s.L; t++) {
                const mask = x.mask === undefined ? undefined : tf.slice(x.mask, [0, t], [-1, 1]);
                const r = step(st, t, mask);
                st.dispose();
                st = r.state;
                outs.push(r.output);
              }
              st.dispose();
              return tf.concat(outs, 2);
            };
            const at = (z: tf.Tensor, t: number) => tf.slice(z, [0, 0, t, 0], [-1, -1, 1, -1]);
            const f = (t: tf.Tensor) => tf.add(tf.abs(t), 0.1);
            const [fq, fk] = [f(x.q), f(x.k)];
            const [full, stepped, lin, linSteps] = await Promise.all(
              [
                favorAttention(x.q, x.k, x.v, { featureMap: phi, causal: true, mask: x.mask }),
                run(phi.numFeatures, (st, t, mask) =>
                  favorCausalStep(st, at(x.q, t), at(x.k, t), at(x.v, t), {
                    featureMap: phi,
                    mask,
                  }),
                ),
                // linear attention on given (position-local) features
                linearAttention(fq, fk, x.v, { causal: true, mask: x.mask }),
                run(s.d, (st, t, mask) =>
                  linearCausalStep(st, at(fq, t), at(fk, t), at(x.v, t), { mask }),
                ),
              ].map(read),
            );
            expectClose(stepped!, full!, eqTol, `favorCausalStep(${kind})`);
            expectClose(linSteps!, lin!, eqTol, 'linearCausalStep');
          } finally {
            phi.dispose();
          }
        });
      },
      timeout,
    );

    it(
      'linearAttention and softmaxAttention: finite, in the hull, causal bit for bit, chunk invariant, no mixing',
      async () => {
        const arb = fc.record({
          c: caseArb(backend),
          chunk: fc.integer({ min: 1, max: 6 }),
          at: fc.nat(),
          which: fc.constantFrom('linear', 'softmax'),
        });
        await assertProperty(arb, SEED + 3, runs, async ({ c, chunk, at, which }) => {
          const s = c.shape;
          const x = inputs(c);
          const f = (t: tf.Tensor) => tf.add(tf.abs(t), 1e-3); // positive features
          const call = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, extra: object = {}) =>
            which === 'linear'
              ? linearAttention(f(q), f(k), v, { causal: c.causal, mask: x.mask, ...extra })
              : softmaxAttention(q, k, v, { causal: c.causal, mask: x.mask });
          const out = call(x.q, x.k, x.v);
          expectShape(out, [s.B, s.H, s.L, s.dv], which);
          const o = await read(out);
          expectFinite(o, which);
          expectInHull(o, x.vv, s, visibleOf(x.keep, c.causal), which);
          const i = at % s.L;
          if (c.causal && check(at, 0)) {
            const later = inputsChangedAfter(x, c, i);
            expectPrefixIdentical(
              o,
              await read(call(x.q, later.k, later.v)),
              s,
              s.dv,
              i,
              `${which} causal`,
            );
            if (which === 'linear')
              expectClose(
                await read(call(x.q, x.k, x.v, { chunkSize: chunk })),
                o,
                eqTol,
                `linear chunkSize ${chunk}`,
              );
          }
          if (s.B * s.H > 1 && check(at, 1)) {
            const k2 = tf.tensor4d(changedGroup0(x.kv, s, s.d, c.data + 13, c.scale), x.k.shape);
            expectOtherGroupsIdentical(o, await read(call(x.q, k2, x.v)), s, s.dv, which);
          }
        });
      },
      timeout,
    );

    it(
      'rpeFavorAttention: finite, in the hull, causal (bit for bit on the dense form), methods agree',
      async () => {
        const kinds: MapKind[] = ['positive', 'positive-eps0', 'hyperbolic', 'relu', 'exp', 'oprf'];
        const arb = fc.record({
          c: caseArb(backend),
          kind: fc.constantFrom(...kinds),
          spread: fc.integer({ min: 0, max: 120 }),
          at: fc.nat(),
        });
        await assertProperty(arb, SEED + 4, runs, async ({ c, kind, spread, at }) => {
          const s = c.shape;
          const phi = makeMap(kind, s.d, s.m, c.data);
          try {
            const x = inputs(c);
            const bias = tf.tensor2d(gaussian(s.H * (2 * s.L - 1), c.data + 5, spread / 3), [
              s.H,
              2 * s.L - 1,
            ]);
            const call = (k: tf.Tensor, v: tf.Tensor, method: 'fft' | 'toeplitz') =>
              rpeFavorAttention(x.q, k, v, {
                featureMap: phi,
                relativeBias: bias,
                causal: c.causal,
                mask: x.mask,
                method,
              });
            const out = call(x.k, x.v, 'toeplitz');
            expectShape(out, [s.B, s.H, s.L, s.dv], 'rpe');
            const o = await read(out);
            expectFinite(o, `rpeFavorAttention(${kind})`);
            expectInHull(o, x.vv, s, visibleOf(x.keep, c.causal), `rpeFavorAttention(${kind})`);
            const i = at % s.L;
            if (c.causal) {
              const later = inputsChangedAfter(x, c, i);
              expectPrefixIdentical(
                o,
                await read(call(later.k, later.v, 'toeplitz')),
                s,
                s.dv,
                i,
                `rpeFavorAttention(${kind}) causal`,
              );
            }
            if (sync && backend !== 'webgl') {
              const viaFft = await read(call(x.k, x.v, 'fft'));
              expectFinite(viaFft, `rpeFavorAttention(${kind}, fft)`);
              expectClose(viaFft, o, 1e-3, `rpeFavorAttention(${kind}) fft vs dense`);
            }
          } finally {
            phi.dispose();
          }
        });
      },
      timeout,
    );

    it(
      'gatedAttention, combinerAttention, bayesianAttention, relationAwareAttention: finite, in the hull, causal bit for bit, no mixing',
      async () => {
        const ops = [
          'gated-hard',
          'gated-relaxed',
          'gated-favor',
          'combiner',
          'bayesian',
          'bayesian-training',
          'relation',
        ] as const;
        const arb = fc.record({
          c: caseArb(backend),
          op: fc.constantFrom(...ops),
          at: fc.nat(),
          variant: fc.constantFrom('fixed', 'axial', 'logsparse', 'mixture') as fc.Arbitrary<
            'fixed' | 'axial' | 'logsparse' | 'mixture'
          >,
        });
        await assertProperty(arb, SEED + 5, runs, async ({ c, op, at, variant }) => {
          const s = c.shape;
          const x = inputs(c);
          const phi = positiveSoftmax({
            projection: gaussianOrthogonal(s.m, s.d, { seed: c.data }),
          });
          const gates = tf.tensor2d(
            Array.from(gaussian(s.B * s.L, c.data + 6, 1), (g) => 1 / (1 + Math.exp(-2 * g))),
            [s.B, s.L],
          );
          const R = 3;
          const relations = clippedRelativePositions(s.L, 1);
          const rel = tf.tile(tf.expandDims(relations, 0), [s.B, 1, 1]);
          const relK = tf.tensor2d(gaussian(R * s.d, c.data + 7, 0.3), [R, s.d]);
          const relV = tf.tensor2d(gaussian(R * s.dv, c.data + 8, 0.3), [R, s.dv]);
          try {
            const call = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
              const base = { causal: c.causal, mask: x.mask };
              switch (op) {
                case 'gated-hard':
                  return gatedAttention(q, k, v, { ...base, gates, mode: 'hard' });
                case 'gated-relaxed':
                  return gatedAttention(q, k, v, { ...base, gates, mode: 'relaxed', seed: 3 });
                case 'gated-favor':
                  return gatedAttention(q, k, v, {
                    ...base,
                    gates,
                    mode: 'relaxed',
                    seed: 3,
                    featureMap: phi,
                  });
                case 'combiner':
                  return combinerAttention(q, k, v, {
                    ...base,
                    variant,
                    blockSize: 1 + (at % Math.min(4, s.L)),
                  });
                case 'bayesian':
                  return bayesianAttention(q, k, v, { ...base, training: false }).output;
                case 'bayesian-training':
                  return bayesianAttention(q, k, v, { ...base, training: true, seed: 5 }).output;
                default:
                  return relationAwareAttention(q, k, v, {
                    ...base,
                    relations: rel,
                    relationKeys: relK,
                    relationValues: relV,
                  });
              }
            };
            const out = call(x.q, x.k, x.v);
            expectShape(out, [s.B, s.H, s.L, s.dv], op);
            const o = await read(out);
            expectFinite(o, op);
            if (op !== 'relation' && !op.startsWith('gated'))
              expectInHull(o, x.vv, s, visibleOf(x.keep, c.causal), op);
            const i = at % s.L;
            if (c.causal) {
              const later = inputsChangedAfter(x, c, i);
              expectPrefixIdentical(
                o,
                await read(call(x.q, later.k, later.v)),
                s,
                s.dv,
                i,
                `${op} causal`,
              );
            }
          } finally {
            phi.dispose();
          }
        });
      },
      timeout,
    );

    it(
      'toeplitzMatmul and the feature maps: finite, the documented shape, positive maps never negative',
      async () => {
        const arb = fc.record({
          c: caseArb(backend),
          kind: fc.constantFrom(...MAP_KINDS),
          role: fc.constantFrom<'query' | 'key'>('query', 'key'),
        });
        await assertProperty(arb, SEED + 6, runs, async ({ c, kind, role }) => {
          const s = c.shape;
          const x = inputs(c);
          const phi = makeMap(kind, s.d, s.m, c.data);
          try {
            const f = phi.features(x.q, role);
            expectShape(f, [s.B, s.H, s.L, phi.numFeatures], `${kind}.features`);
            const fv = await read(f);
            expectFinite(fv, `${kind}.features(${role})`);
            if (POSITIVE_WEIGHTS.has(kind)) {
              const neg = fv.findIndex((z) => z < 0);
              if (neg >= 0)
                throw new Error(`${kind}.features(${role}) entry ${neg} is negative: ${fv[neg]}`);
            }
            const cvec = tf.tensor2d(gaussian(s.H * (2 * s.L - 1), c.data + 5, 1), [
              s.H,
              2 * s.L - 1,
            ]);
            const y = toeplitzMatmul(
              cvec,
              x.v,
              sync && backend !== 'webgl' ? {} : { method: 'toeplitz' },
            );
            expectShape(y, [s.B, s.H, s.L, s.dv], 'toeplitzMatmul');
            expectFinite(await read(y), 'toeplitzMatmul');
          } finally {
            phi.dispose();
          }
        });
      },
      timeout,
    );
  });
}
