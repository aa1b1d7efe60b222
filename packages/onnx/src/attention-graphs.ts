/**
 * Attention as ONNX graphs (opset 17), with the same mathematics as `@kernel-attention/core`:
 * exact softmax attention, and FAVOR+ with positive or hyperbolic softmax features whose
 * projection is a graph input (a feature redraw needs no new graph). Batch, heads and lengths are
 * symbolic: one graph serves every size.
 */
import { GraphBuilder } from './graph.js';

/**
 * The feature maps a FAVOR+ graph computes: core's positiveSoftmax ('positive'),
 * hyperbolicSoftmax ('hyperbolic'), trigSoftmax ('trig', stabilized), generalized with the
 * relu function ('relu', φ = relu(W·x̂) + eps: eps is its kernelEps, default 1e-3 there), and
 * 'fitted': the data-dependent maps optimizedPositiveSoftmax (FAVOR++) and
 * denseExponentialSoftmax (SADERF, ADERF, SDERF) with their fitted parameters as graph inputs,
 * in the general form that `fittedParameters` of `@kernel-attention/feature-maps` gives.
 */
export type OnnxFeatureMap = 'positive' | 'hyperbolic' | 'trig' | 'relu' | 'fitted';
const FEATURE_MAPS: readonly string[] = ['positive', 'hyperbolic', 'trig', 'relu', 'fitted'];

export interface ExactAttentionGraphOptions {
  /** Head size d (the scores are scaled by d^-1/2). */
  dim: number;
  /** Query i sees keys 0..i only. Default false. */
  causal?: boolean;
  /** Adds a `mask` input [batch, keys] (1 keep, 0 pad). Default false. */
  mask?: boolean;
}

export interface FavorAttentionGraphOptions {
  /** Head size d. */
  dim: number;
  /**
   * Rows m of the projection input [m, d] (features: m, or 2m for hyperbolic); for 'fitted' the
   * features of the fitted map (its projection input is [B, H, m, d]).
   */
  numProjections: number;
  /**
   * 'positive' (FAVOR+, default), 'hyperbolic' (the ±ω pair), 'trig', 'relu' or 'fitted' (see
   * OnnxFeatureMap). A 'fitted' graph takes, instead of the shared projection, the fit's
   * `projection` [B, H, m, d], `queryTransform` and `keyTransform` [B, H, d, d] and
   * `queryOffset` and `keyOffset` [B, H, m].
   */
  featureMap?: OnnxFeatureMap;
  /** The feature floor, as the map's eps (default 1e-6, as positiveSoftmax's). */
  eps?: number;
  /** Adds a `mask` input [batch, keys] (1 keep, 0 pad). Default false. */
  mask?: boolean;
  /**
   * Query i sees keys 0..i only, the key stabilizer included (a running maximum, as core's
   * favorAttention): computed chunk by chunk in an ONNX Scan that carries the state. Default false.
   */
  causal?: boolean;
  /** Causal: positions per chunk (default 64). */
  chunkSize?: number;
}

function checkPositiveInt(fn: string, name: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new RangeError(`${fn}: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value as number;
}

function checkOptions(fn: string, opts: unknown, expected: string): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(
      `${fn}: options ${expected} are required, got ${opts === null ? 'null' : Array.isArray(opts) ? 'an array' : typeof opts}`,
    );
  }
}

/**
 * The serialized ONNX model of exact softmax attention: inputs `q` [B, H, Lq, d], `k`
 * [B, H, Lk, d], `v` [B, H, Lk, dv] (and `mask` [B, Lk] when asked for), output `out`
 * [B, H, Lq, dv]. A query that sees no key (all padded) gives 0, as core's softmaxAttention does.
 *
 * @param opts - `{ dim, causal, mask }`
 *
 * @example
 * ```ts
 * import { exactAttentionModel } from '@kernel-attention/onnx';
 * const model = exactAttentionModel({ dim: 64, causal: true }); // bytes of a .onnx file
 * ```
 */
export function exactAttentionModel(opts: ExactAttentionGraphOptions): Uint8Array {
  const fn = 'exactAttentionModel';
  checkOptions(fn, opts, '{ dim, causal, mask }');
  const d = checkPositiveInt(fn, 'dim', opts.dim);
  const g = new GraphBuilder('exact_attention');
  const q = g.input('q', ['batch', 'heads', 'queries', d]);
  const k = g.input('k', ['batch', 'heads', 'keys', d]);
  const v = g.input('v', ['batch', 'heads', 'keys', 'valueDim']);
  const scores = g.node('Mul', [
    g.node('MatMul', [q, g.node('Transpose', [k], { perm: [0, 1, 3, 2] })]),
    g.constant([1 / Math.sqrt(d)]),
  ]);
  // allowed [.., Lq, Lk]: 1 where query i may see key j
  let allowed: string | null = null;
  if (opts.causal) {
    const shape = g.node(
      'Concat',
      [
        g.node('Slice', [g.node('Shape', [q]), g.ints([2]), g.ints([3])]),
        g.node('Slice', [g.node('Shape', [k]), g.ints([2]), g.ints([3])]),
      ],
      { axis: 0 },
    );
    allowed = g.node('Trilu', [g.node('Expand', [g.constant([1]), shape])], { upper: 0 });
  }
  if (opts.mask) {
    const mask = g.input('mask', ['batch', 'keys']);
    const m = g.node('Unsqueeze', [mask, g.ints([1, 2])]); // [B, 1, 1, Lk]
    allowed = allowed === null ? m : g.node('Mul', [allowed, m]);
  }
  let weights: string;
  if (allowed === null) {
    weights = g.node('Softmax', [scores], { axis: -1 });
  } else {
    const biased = g.node('Add', [
      scores,
      g.node('Mul', [g.node('Sub', [allowed, g.constant([1])]), g.constant([1e30])]),
    ]);
    // exp(−1e30 − max) is exactly 0 where a query sees some key; rows that see none are zeroed
    weights = g.node('Mul', [g.node('Softmax', [biased], { axis: -1 }), allowed]);
  }
  g.output(g.node('MatMul', [weights, v]), 'out', ['batch', 'heads', 'queries', 'valueDim']);
  return g.model();
}

/**
 * The serialized ONNX model of FAVOR+: inputs `q` [B, H, Lq, d], `k` [B, H, Lk, d],
 * `v` [B, H, Lk, dv], `projection` [m, d] (and `mask` [B, Lk] when asked for), output `out`
 * [B, H, Lq, dv]. The features and their stabilizers are those of core's positiveSoftmax /
 * hyperbolicSoftmax with favorAttention: queries stabilized per row, keys by the largest exponent
 * over the unpadded keys of their (batch, head) — when causal, over keys 0..i only, a running
 * maximum, so no output depends on a later key — padded keys left out of both sums, eps a floor
 * relative to the largest feature; a query with no unpadded key gives 0. Causal graphs need as
 * many queries as keys.
 *
 * @param opts - `{ dim, numProjections, featureMap, eps, mask, causal, chunkSize }`
 *
 * @example
 * ```ts
 * import { favorAttentionModel } from '@kernel-attention/onnx';
 * const model = favorAttentionModel({ dim: 64, numProjections: 256 }); // positive features
 * ```
 */
export function favorAttentionModel(opts: FavorAttentionGraphOptions): Uint8Array {
  const fn = 'favorAttentionModel';
  checkOptions(fn, opts, '{ dim, numProjections, featureMap, eps, mask, causal, chunkSize }');
  const d = checkPositiveInt(fn, 'dim', opts.dim);
  const m = checkPositiveInt(fn, 'numProjections', opts.numProjections);
  const map = opts.featureMap ?? 'positive';
  if (!FEATURE_MAPS.includes(map)) {
    throw new RangeError(
      `${fn}: featureMap must be one of ${FEATURE_MAPS.map((f) => `'${f}'`).join(', ')}, got ${JSON.stringify(map)}`,
    );
  }
  const eps = opts.eps ?? 1e-6;
  if (!(typeof eps === 'number' && Number.isFinite(eps) && eps >= 0)) {
    throw new RangeError(`${fn}: eps must be a finite number >= 0, got ${String(opts.eps)}`);
  }
  const g = new GraphBuilder(`favor_attention_${map}${opts.causal ? '_causal' : ''}`);
  const keys = opts.causal ? 'queries' : 'keys'; // causal: one length
  const q = g.input('q', ['batch', 'heads', 'queries', d]);
  const k = g.input('k', ['batch', 'heads', keys, d]);
  const v = g.input('v', ['batch', 'heads', keys, 'valueDim']);
  const fitted = map === 'fitted';
  const w = g.input('projection', fitted ? ['batch', 'heads', m, d] : [m, d]);
  const fit = fitted
    ? {
        queryTransform: g.input('queryTransform', ['batch', 'heads', d, d]),
        keyTransform: g.input('keyTransform', ['batch', 'heads', d, d]),
        queryOffset: g.input('queryOffset', ['batch', 'heads', m]),
        keyOffset: g.input('keyOffset', ['batch', 'heads', m]),
      }
    : null;
  const mask = opts.mask ? g.input('mask', ['batch', keys]) : null;
  const { out } = favorNodes(g, {
    q,
    k,
    v,
    projection: w,
    fitted: fit,
    mask,
    dim: d,
    featureMap: map,
    eps,
    causal: opts.causal === true,
    chunk: opts.causal ? chunkSize(fn, opts.chunkSize) : 0,
  });
  g.output(out, 'out', ['batch', 'heads', 'queries', 'valueDim']);
  return g.model();
}

/**
 * @internal A causal call's state after its last position, as the one-token step graph takes it:
 * S [B, H, m', dv + 1] = Σ exp(ℓ_j − P)·b_j[v_j | 1]ᵀ, P [B, H, 1] the running maximum of ℓ,
 * F [B, H, 1, dv + 1] = Σ[v_j | 1].
 */
export interface CausalStateNames {
  S: string;
  P: string;
  F: string;
}

/** @internal favorNodes' output [B, H, Lq, dv], and the causal state (null when bidirectional). */
export interface FavorNodesResult {
  out: string;
  state: CausalStateNames | null;
}

/** @internal A fitted map's parameters (besides its projection) as values in the graph. */
export interface FittedInputNames {
  /** [B, H, d, d]: z' = z·Tᵀ per role. */
  queryTransform: string;
  keyTransform: string;
  /** [B, H, m]: added to each role's exponents. */
  queryOffset: string;
  keyOffset: string;
}

/** @internal The inputs of favorNodes: value names in `g` and the settings. */
export interface FavorNodesInputs {
  q: string;
  k: string;
  v: string;
  /** [m, d]; 'fitted': [B, H, m, d] */
  projection: string;
  /** 'fitted' only: the fit's other parameters (see FittedInputNames). */
  fitted?: FittedInputNames | null;
  /** [B, Lk] (1 keep, 0 pad), or null. */
  mask: string | null;
  dim: number;
  featureMap: OnnxFeatureMap;
  eps: number;
  causal: boolean;
  /** Causal: positions per chunk. */
  chunk: number;
}

/** @internal FAVOR+ written into `g` (a graph of its own, or a layer of a model); returns the output. */
export function favorNodes(g: GraphBuilder, o: FavorNodesInputs): FavorNodesResult {
  let { q, k, v } = o;
  const { projection: w, mask, dim: d, featureMap: map, eps, causal, chunk } = o;
  // causal: the length padded to a multiple of the chunk first (on the narrow inputs), the padded
  // keys marked as padding; they come after every real query, which never sees them
  const length = g.node('Slice', [g.node('Shape', [q]), g.ints([2]), g.ints([3])]);
  let keep: string | null = null;
  if (causal) {
    const cInt = g.ints([chunk]);
    const pad = g.node('Mod', [g.node('Sub', [cInt, g.node('Mod', [length, cInt])]), cInt]);
    const pads4 = g.node('Concat', [g.ints([0, 0, 0, 0, 0, 0]), pad, g.ints([0])], { axis: 0 });
    [q, k, v] = [q, k, v].map((x) => g.node('Pad', [x, pads4])) as [string, string, string];
    const padded = g.node('Add', [length, pad]);
    const positions = g.node('Range', [
      g.ints([0], []),
      g.node('Squeeze', [padded, g.ints([0])]),
      g.ints([1], []),
    ]);
    keep = g.node('Reshape', [g.node('Less', [positions, length]), g.ints([1, 1, -1, 1])]);
    if (mask !== null) {
      const maskP = g.node('Pad', [mask, g.node('Concat', [g.ints([0, 0, 0]), pad], { axis: 0 })]);
      const open = g.node('Greater', [
        g.node('Unsqueeze', [maskP, g.ints([1, 3])]),
        g.constant([0]),
      ]);
      keep = g.node('And', [keep, open]);
    }
  } else if (mask !== null) {
    keep = g.node('Greater', [g.node('Unsqueeze', [mask, g.ints([1, 3])]), g.constant([0])]);
  }
  if (map === 'trig' || map === 'relu') {
    const c = g.constant([d ** -0.25]);
    const wt = g.node('Transpose', [w], { perm: [1, 0] });
    return localOrTrig(g, { q, k, v, keep, c, wt, map, eps, causal, chunk, length });
  }
  const { phiQ, a } =
    map === 'fitted'
      ? fittedFeatureParts(g, { q, k, projection: w, fitted: o.fitted!, dim: d, eps })
      : expFeatureParts(g, { q, k, projection: w, dim: d, map, eps });
  return causal
    ? causalFavor(g, { phiQ, a, v, keep: keep!, eps, chunk, length })
    : { out: bidirectionalFavor(g, { phiQ, a, v, keep, eps }), state: null };
}

/** @internal What expFeatureParts reads: value names in the graph and the map's settings. */
export interface ExpFeatureInputs {
  q: string;
  k: string;
  /** [m, d] */
  projection: string;
  dim: number;
  map: 'positive' | 'hyperbolic';
  eps: number;
}

/**
 * @internal The positive and hyperbolic maps' parts: query features φ ∝ exp(u − max_f u) + eps
 * (the half norm and the ratio (numFeatures)^-1/2 cancel: each multiplies a query's or every
 * feature alike) and the keys' exponents a = u − ½|x̂|², u = x̂·Wᵀ ([u, −u] for hyperbolic),
 * x̂ = d^-1/4·x. Shared by the attention graphs and the PerformerLM step graph.
 */
export function expFeatureParts(g: GraphBuilder, o: ExpFeatureInputs): { phiQ: string; a: string } {
  const c = g.constant([o.dim ** -0.25]);
  const wt = g.node('Transpose', [o.projection], { perm: [1, 0] });
  const project = (xh: string) => {
    const u = g.node('MatMul', [xh, wt]);
    return o.map === 'hyperbolic' ? g.node('Concat', [u, g.node('Neg', [u])], { axis: -1 }) : u;
  };
  const uq = project(g.node('Mul', [o.q, c]));
  const phiQ = withFloor(
    g,
    g.node('Exp', [g.node('Sub', [uq, g.node('ReduceMax', [uq], { axes: [-1], keepdims: 1 })])]),
    o.eps,
  );
  const kh = g.node('Mul', [o.k, c]);
  return { phiQ, a: g.node('Sub', [project(kh), halfSquaredNorm(g, kh)]) };
}

/**
 * The fitted maps' parts, in the general form of `fittedParameters`: z' = z·T_roleᵀ, exponents
 * a = (c·z')·P_gᵀ + o_role − ½c²|z'|²; query features exp(a − max_f a) + eps (the norm term is
 * constant along a query's row and cancels there) and the keys' exponents a.
 */
function fittedFeatureParts(
  g: GraphBuilder,
  o: {
    q: string;
    k: string;
    projection: string;
    fitted: FittedInputNames;
    dim: number;
    eps: number;
  },
): { phiQ: string; a: string } {
  const c = g.constant([o.dim ** -0.25]);
  const t = (x: string) => g.node('Transpose', [x], { perm: [0, 1, 3, 2] });
  const pt = t(o.projection); // [B, H, d, m]
  const role = (x: string, transform: string, offset: string) => {
    const z = g.node('Mul', [g.node('MatMul', [x, t(transform)]), c]); // c·z' [B, H, L, d]
    const u = g.node('Add', [
      g.node('MatMul', [z, pt]),
      g.node('Unsqueeze', [offset, g.ints([2])]),
    ]);
    return { z, u };
  };
  const query = role(o.q, o.fitted.queryTransform, o.fitted.queryOffset);
  const phiQ = withFloor(
    g,
    g.node('Exp', [
      g.node('Sub', [query.u, g.node('ReduceMax', [query.u], { axes: [-1], keepdims: 1 })]),
    ]),
    o.eps,
  );
  const key = role(o.k, o.fitted.keyTransform, o.fitted.keyOffset);
  return { phiQ, a: g.node('Sub', [key.u, halfSquaredNorm(g, key.z)]) };
}

/** e + eps (e itself when eps is 0). */
function withFloor(g: GraphBuilder, e: string, eps: number): string {
  return eps > 0 ? g.node('Add', [e, g.constant([eps])]) : e;
}

/** ½|x̂|² [..., 1] of x̂ (already scaled). */
function halfSquaredNorm(g: GraphBuilder, xh: string): string {
  return g.node('Mul', [
    g.node('ReduceSum', [g.node('Mul', [xh, xh]), g.ints([-1])], { keepdims: 1 }),
    g.constant([0.5]),
  ]);
}

/**
 * The trigonometric and relu maps, through the general form of keys φ_j = exp(ℓ_j − s)·b_j:
 * trig — queries [cos u, sin u] (their exp(½|q̂|²) cancels per row), keys b_j = [cos u, sin u]
 * with ℓ_j = ½|k̂_j|² (core's trigSoftmax stabilizer); relu — φ = relu(u) + eps for queries and
 * keys alike, ℓ = 0 (position-local: plain sums).
 */
function localOrTrig(
  g: GraphBuilder,
  o: {
    q: string;
    k: string;
    v: string;
    keep: string | null;
    c: string;
    wt: string;
    map: 'trig' | 'relu';
    eps: number;
    causal: boolean;
    chunk: number;
    length: string;
  },
): FavorNodesResult {
  const { v, keep, c, wt, map, eps, causal, chunk, length } = o;
  const qh = g.node('Mul', [o.q, c]);
  const kh = g.node('Mul', [o.k, c]);
  const uq = g.node('MatMul', [qh, wt]);
  const uk = g.node('MatMul', [kh, wt]);
  const trig = (u: string) =>
    g.node('Concat', [g.node('Cos', [u]), g.node('Sin', [u])], { axis: -1 });
  const relu = (u: string) => withFloor(g, g.node('Relu', [u]), eps);
  const phiQ = map === 'trig' ? trig(uq) : relu(uq);
  const b = map === 'trig' ? trig(uk) : relu(uk);
  const ell0 =
    map === 'trig'
      ? halfSquaredNorm(g, kh)
      : g.node('Mul', [g.node('ReduceMax', [uk], { axes: [-1], keepdims: 1 }), g.constant([0])]);
  if (causal) {
    const ell = g.node('Where', [keep!, ell0, g.constant([-1e30])]);
    const v1 = g.node('Mul', [withOnes(g, v), g.node('Cast', [keep!], { to: 1 })]);
    return scanCausal(g, { phiQ, ell, b, v1, length, eps: 0, chunk });
  }
  const ellVisible = keep === null ? ell0 : g.node('Where', [keep, ell0, g.constant([-1e30])]);
  const s = g.node('ReduceMax', [ellVisible], { axes: [2, 3], keepdims: 1 });
  let phiK = g.node('Mul', [b, g.node('Exp', [g.node('Sub', [ell0, s])])]);
  if (keep !== null) phiK = g.node('Where', [keep, phiK, g.constant([0])]);
  const kv = g.node('MatMul', [
    g.node('Transpose', [phiK], { perm: [0, 1, 3, 2] }),
    withOnes(g, v),
  ]);
  return { out: ratio(g, g.node('MatMul', [phiQ, kv])), state: null };
}

/** Bidirectional: s = max of a over the unpadded keys of the (batch, head); one pass of products. */
function bidirectionalFavor(
  g: GraphBuilder,
  o: { phiQ: string; a: string; v: string; keep: string | null; eps: number },
): string {
  const { phiQ, a, v, keep, eps } = o;
  const aVisible = keep === null ? a : g.node('Where', [keep, a, g.constant([-1e30])]);
  const s = g.node('ReduceMax', [aVisible], { axes: [2, 3], keepdims: 1 });
  let phiK = withFloor(g, g.node('Exp', [g.node('Sub', [a, s])]), eps);
  if (keep !== null) phiK = g.node('Where', [keep, phiK, g.constant([0])]);
  // [numerator | denominator] = φ(Q)(φ(K)ᵀ[V | 1]) in two products
  const kv = g.node('MatMul', [
    g.node('Transpose', [phiK], { perm: [0, 1, 3, 2] }),
    withOnes(g, v),
  ]);
  return ratio(g, g.node('MatMul', [phiQ, kv]));
}

/** @internal [v | 1]: the values with a column of ones, so one product gives numerator and denominator. */
export function withOnes(g: GraphBuilder, v: string): string {
  const ones = g.node('Expand', [
    g.constant([1]),
    g.node(
      'Concat',
      [g.node('Slice', [g.node('Shape', [v]), g.ints([0]), g.ints([3])]), g.ints([1])],
      {
        axis: 0,
      },
    ),
  ]);
  return g.node('Concat', [v, ones], { axis: -1 });
}

/** @internal [..., dv + 1] → numerator / denominator [..., dv], as core divides (0 where no key is seen). */
export function ratio(g: GraphBuilder, both: string): string {
  const dv1 = g.node('Slice', [g.node('Shape', [both]), g.ints([-1]), g.ints([2 ** 31])]);
  const dvEnd = g.node('Sub', [dv1, g.ints([1])]);
  const numerator = g.node('Slice', [both, g.ints([0]), dvEnd, g.ints([-1])]);
  const denominator = g.node('Slice', [both, dvEnd, dv1, g.ints([-1])]);
  // as core's safeDivide: num / den, and num itself (0) where den is 0 (no key seen)
  const zero = g.node('Equal', [denominator, g.constant([0])]);
  return g.node('Div', [numerator, g.node('Where', [zero, g.constant([1]), denominator])]);
}

function chunkSize(fn: string, value: unknown): number {
  return value === undefined ? 64 : checkPositiveInt(fn, 'chunkSize', value);
}

/** What the causal Scan starts from. */
interface CausalParts {
  /** Query features [B, H, L, m'] (floor included). */
  phiQ: string;
  /** ℓ_j = max_f a_jf [B, H, L, 1]; −1e30 for padded keys. */
  ell: string;
  /** b_j = exp(a_j − ℓ_j) [B, H, L, m'] (largest entry 1). */
  b: string;
  /** [v_j | 1] [B, H, L, dv + 1]; 0 for padded keys. */
  v1: string;
  /** L (before the padding to a multiple of C) as a 1-element int64 tensor. */
  length: string;
  eps: number;
  chunk: number;
}

/**
 * Causal FAVOR+, exactly causal: query i uses the keys 0..i with their own stabilizer
 * s_i = max_{j≤i} ℓ_j (ℓ_j = max_f a_jf), the eps floor kept apart — so output i is the
 * bidirectional estimate on the prefix, as in core. Keys enter as φ_j = exp(ℓ_j − s_i)·b_j + eps,
 * b_j = exp(a_j − ℓ_j). Chunks of C positions go through an ONNX Scan carrying the state
 * S = Σ exp(ℓ_j − P)·b_j[v_j | 1]ᵀ relative to the running maximum P, F = Σ[v_j | 1] (the floor's
 * part) and P; inside a chunk the C×C weights use each query's own s_i. Every exponent is ≤ 0, so
 * it holds at any spread of ℓ. (A prefix-sum form without the Scan, exact only while the spread
 * stays within float32's range, measured no faster on ONNX Runtime's CPU provider.)
 */
function causalFavor(
  g: GraphBuilder,
  o: {
    phiQ: string;
    a: string;
    v: string;
    keep: string;
    eps: number;
    chunk: number;
    length: string;
  },
): FavorNodesResult {
  const { phiQ, a, v, keep, eps, chunk, length } = o;
  const ell0 = g.node('ReduceMax', [a], { axes: [-1], keepdims: 1 }); // [B, H, Lp, 1]
  const b = g.node('Exp', [g.node('Sub', [a, ell0])]);
  // padded keys (the user's mask and the chunk padding): out of every sum
  const ell = g.node('Where', [keep, ell0, g.constant([-1e30])]);
  const v1 = g.node('Mul', [withOnes(g, v), g.node('Cast', [keep], { to: 1 })]);
  return scanCausal(g, { phiQ, ell, b, v1, length, eps, chunk });
}

/** [B, H, Lp, X] (Lp a multiple of C) split: [B, H, nc, C, X]. */
function chunked(g: GraphBuilder, x: string, p: CausalParts): string {
  const last = g.node('Slice', [g.node('Shape', [x]), g.ints([3]), g.ints([4])]);
  const shape = g.node('Concat', [g.ints([0, 0, -1, p.chunk]), last], { axis: 0 });
  return g.node('Reshape', [x, shape]);
}

/** [B, H, nc, C, dv] → [B, H, L, dv]. */
function unchunked(g: GraphBuilder, x: string, p: CausalParts): string {
  const dv = g.node('Slice', [g.node('Shape', [x]), g.ints([4]), g.ints([5])]);
  const merged = g.node('Reshape', [x, g.node('Concat', [g.ints([0, 0, -1]), dv], { axis: 0 })]);
  return g.node('Slice', [merged, g.ints([0]), p.length, g.ints([2])]);
}

/** The C×C lower-triangular ones (key j ≤ query i inside a chunk). */
const lowerOnes = (g: GraphBuilder, C: number) =>
  g.constant(
    Array.from({ length: C * C }, (_, t) => (t % C <= Math.floor(t / C) ? 1 : 0)),
    [C, C],
  );

/** Chunk after chunk in a Scan, the state relative to the running maximum. */
function scanCausal(g: GraphBuilder, p: CausalParts): FavorNodesResult {
  const C = p.chunk;
  /** [B, H, nc, C, X] → [nc, B, H, C, X] (the Scan iterates over the first axis). */
  const scanned = (x: string) => g.node('Transpose', [chunked(g, x, p)], { perm: [2, 0, 1, 3, 4] });
  const ellC = g.node('Squeeze', [scanned(p.ell), g.ints([4])]); // [nc, B, H, C]
  const bC = scanned(p.b);
  const qC = scanned(p.phiQ);
  const vC = scanned(p.v1);

  // initial state
  const bh = g.node('Slice', [g.node('Shape', [p.phiQ]), g.ints([0]), g.ints([2])]);
  const mF = g.node('Slice', [g.node('Shape', [p.b]), g.ints([3]), g.ints([4])]);
  const dv1 = g.node('Slice', [g.node('Shape', [p.v1]), g.ints([3]), g.ints([4])]);
  const s0 = g.node('Expand', [g.constant([0]), g.node('Concat', [bh, mF, dv1], { axis: 0 })]);
  const p0 = g.node('Expand', [
    g.constant([-1e30]),
    g.node('Concat', [bh, g.ints([1])], { axis: 0 }),
  ]);
  const f0 = g.node('Expand', [
    g.constant([0]),
    g.node('Concat', [bh, g.ints([1]), dv1], { axis: 0 }),
  ]);

  const body = chunkBody(C, p.eps);

  const [S1, P1, F1, outC] = g.nodeN('Scan', [s0, p0, f0, ellC, bC, qC, vC], 4, {
    body: { graph: body.graph() },
    num_scan_inputs: 4,
  });
  return {
    out: unchunked(g, g.node('Transpose', [outC!], { perm: [1, 2, 0, 3, 4] }), p),
    state: { S: S1!, P: P1!, F: F1! },
  };
}

/**
 * One chunk of the causal Scan: inputs the state (S, P, F) and the chunk's ℓ, b, φ(q), [v | 1];
 * outputs the next state and the chunk's output (see scanCausal).
 */
function chunkBody(C: number, eps: number): GraphBuilder {
  const body = new GraphBuilder('favor_causal_chunk', 'chunk_');
  const S = body.input('S', null);
  const P = body.input('P', null); // [B, H, 1]
  const F = body.input('F', null); // [B, H, 1, dv + 1]
  const l = body.input('ell', null); // [B, H, C]
  const bb = body.input('b', null); // [B, H, C, m']
  const qq = body.input('q', null); // [B, H, C, m']
  const vv = body.input('v', null); // [B, H, C, dv + 1]
  const tril = lowerOnes(body, C);
  const lRow = body.node('Unsqueeze', [l, body.ints([2])]); // ℓ_j along the last axis
  const masked = body.node('Add', [
    lRow,
    body.node('Mul', [body.node('Sub', [tril, body.constant([1])]), body.constant([1e30])]),
  ]);
  const s = body.node('Max', [body.node('ReduceMax', [masked], { axes: [3], keepdims: 0 }), P]);
  const sCol = body.node('Unsqueeze', [s, body.ints([3])]); // [B, H, C, 1]
  // inside the chunk: (exp(ℓ_j − s_i)·q_i·b_j + eps·Σ_f q_if)·[v_j | 1] for j ≤ i
  const e = body.node('Mul', [
    body.node('Exp', [body.node('Min', [body.node('Sub', [lRow, sCol]), body.constant([0])])]),
    tril,
  ]);
  const qb = body.node('MatMul', [qq, body.node('Transpose', [bb], { perm: [0, 1, 3, 2] })]);
  const floorQ = body.node('Mul', [
    body.node('ReduceSum', [qq, body.ints([3])], { keepdims: 1 }), // [B, H, C, 1]
    body.constant([eps]),
  ]);
  const weights = body.node('Add', [body.node('Mul', [qb, e]), body.node('Mul', [floorQ, tril])]);
  const within = body.node('MatMul', [weights, vv]);
  const pCol = body.node('Unsqueeze', [P, body.ints([3])]); // [B, H, 1, 1]
  const decay = body.node('Exp', [body.node('Sub', [pCol, sCol])]); // ≤ 1
  const cross = body.node('Add', [
    body.node('Mul', [decay, body.node('MatMul', [qq, S])]),
    body.node('Mul', [floorQ, F]),
  ]);
  const out = ratio(body, body.node('Add', [within, cross]));
  const p1 = body.node('ReduceMax', [s], { axes: [2], keepdims: 1 }); // [B, H, 1]
  const wk = body.node('Exp', [body.node('Min', [body.node('Sub', [l, p1]), body.constant([0])])]);
  const bw = body.node('Mul', [bb, body.node('Unsqueeze', [wk, body.ints([3])])]);
  const s1 = body.node('Add', [
    body.node('Mul', [
      body.node('Exp', [body.node('Sub', [pCol, body.node('Unsqueeze', [p1, body.ints([3])])])]),
      S,
    ]),
    body.node('MatMul', [body.node('Transpose', [bw], { perm: [0, 1, 3, 2] }), vv]),
  ]);
  const f1 = body.node('Add', [F, body.node('ReduceSum', [vv, body.ints([2])], { keepdims: 1 })]);
  body.output(s1, 'S_next', null);
  body.output(p1, 'P_next', null);
  body.output(f1, 'F_next', null);
  body.output(out, 'out_chunk', null);

  return body;
}
