/**
 * Attention as ONNX graphs (opset 17), with the same mathematics as `@kernel-attention/core`:
 * exact softmax attention, and FAVOR+ with positive or hyperbolic softmax features whose
 * projection is a graph input (a feature redraw needs no new graph). Batch, heads and lengths are
 * symbolic: one graph serves every size.
 */
import { GraphBuilder } from './graph.js';

/** The feature maps a FAVOR+ graph computes (core's positiveSoftmax and hyperbolicSoftmax). */
export type OnnxFeatureMap = 'positive' | 'hyperbolic';

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
  /** Rows m of the projection input [m, d] (features: m, or 2m for hyperbolic). */
  numProjections: number;
  /** 'positive' (FAVOR+, default) or 'hyperbolic' (the ±ω pair). */
  featureMap?: OnnxFeatureMap;
  /** The feature floor, as the map's eps (default 1e-6, as positiveSoftmax's). */
  eps?: number;
  /** Adds a `mask` input [batch, keys] (1 keep, 0 pad). Default false. */
  mask?: boolean;
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
 * The serialized ONNX model of bidirectional FAVOR+: inputs `q` [B, H, Lq, d], `k` [B, H, Lk, d],
 * `v` [B, H, Lk, dv], `projection` [m, d] (and `mask` [B, Lk] when asked for), output `out`
 * [B, H, Lq, dv]. The features and their stabilizers are those of core's positiveSoftmax /
 * hyperbolicSoftmax with favorAttention: queries stabilized per row, keys by the largest exponent
 * over the unpadded keys of their (batch, head), padded keys left out of both sums, eps a floor
 * relative to the largest feature; a query with no unpadded key gives 0.
 *
 * @param opts - `{ dim, numProjections, featureMap, eps, mask }`
 *
 * @example
 * ```ts
 * import { favorAttentionModel } from '@kernel-attention/onnx';
 * const model = favorAttentionModel({ dim: 64, numProjections: 256 }); // positive features
 * ```
 */
export function favorAttentionModel(opts: FavorAttentionGraphOptions): Uint8Array {
  const fn = 'favorAttentionModel';
  checkOptions(fn, opts, '{ dim, numProjections, featureMap, eps, mask }');
  const d = checkPositiveInt(fn, 'dim', opts.dim);
  const m = checkPositiveInt(fn, 'numProjections', opts.numProjections);
  const map = opts.featureMap ?? 'positive';
  if (map !== 'positive' && map !== 'hyperbolic') {
    throw new RangeError(
      `${fn}: featureMap must be 'positive' or 'hyperbolic', got ${JSON.stringify(map)}`,
    );
  }
  const eps = opts.eps ?? 1e-6;
  if (!(typeof eps === 'number' && Number.isFinite(eps) && eps >= 0)) {
    throw new RangeError(`${fn}: eps must be a finite number >= 0, got ${String(opts.eps)}`);
  }
  const g = new GraphBuilder(`favor_attention_${map}`);
  const q = g.input('q', ['batch', 'heads', 'queries', d]);
  const k = g.input('k', ['batch', 'heads', 'keys', d]);
  const v = g.input('v', ['batch', 'heads', 'keys', 'valueDim']);
  const w = g.input('projection', [m, d]);
  const c = g.constant([d ** -0.25]);
  const wt = g.node('Transpose', [w], { perm: [1, 0] });
  /** u = x̂·Wᵀ ([u, −u] for hyperbolic), x̂ = d^-1/4·x. */
  const project = (xh: string) => {
    const u = g.node('MatMul', [xh, wt]);
    return map === 'hyperbolic' ? g.node('Concat', [u, g.node('Neg', [u])], { axis: -1 }) : u;
  };
  // The maps' constant ratio (numFeatures)^-1/2 multiplies every query's and every key's features
  // alike, floor included, so it cancels between numerator and denominator: it is left out.
  const withFloor = (e: string) => (eps > 0 ? g.node('Add', [e, g.constant([eps])]) : e);

  // queries: φ ∝ exp(u − max_f u) + eps — the half norm cancels in each row
  const uq = project(g.node('Mul', [q, c]));
  const phiQ = withFloor(
    g.node('Exp', [g.node('Sub', [uq, g.node('ReduceMax', [uq], { axes: [-1], keepdims: 1 })])]),
  );

  // keys: a = u − ½|x̂|², s = max of a over the unpadded keys of the (batch, head)
  const kh = g.node('Mul', [k, c]);
  const halfNorm = g.node('Mul', [
    g.node('ReduceSum', [g.node('Mul', [kh, kh]), g.ints([-1])], { keepdims: 1 }),
    g.constant([0.5]),
  ]);
  const a = g.node('Sub', [project(kh), halfNorm]);
  let keep: string | null = null;
  let aVisible = a;
  if (opts.mask) {
    const mask = g.input('mask', ['batch', 'keys']);
    keep = g.node('Greater', [g.node('Unsqueeze', [mask, g.ints([1, 3])]), g.constant([0])]);
    aVisible = g.node('Where', [keep, a, g.constant([-1e30])]);
  }
  const s = g.node('ReduceMax', [aVisible], { axes: [2, 3], keepdims: 1 });
  let phiK = withFloor(g.node('Exp', [g.node('Sub', [a, s])]));
  if (keep !== null) phiK = g.node('Where', [keep, phiK, g.constant([0])]);

  // [numerator | denominator] = φ(Q)(φ(K)ᵀ[V | 1]) in two products; no visible key: 0
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
  const v1 = g.node('Concat', [v, ones], { axis: -1 });
  const kv = g.node('MatMul', [g.node('Transpose', [phiK], { perm: [0, 1, 3, 2] }), v1]);
  const both = g.node('MatMul', [phiQ, kv]); // [B, H, Lq, dv + 1]
  const dv1 = g.node('Slice', [g.node('Shape', [both]), g.ints([3]), g.ints([4])]);
  const dvEnd = g.node('Sub', [dv1, g.ints([1])]);
  const numerator = g.node('Slice', [both, g.ints([0]), dvEnd, g.ints([3])]);
  const denominator = g.node('Slice', [both, dvEnd, dv1, g.ints([3])]);
  const positive = g.node('Greater', [denominator, g.constant([0])]);
  const safe = g.node('Where', [positive, denominator, g.constant([1])]);
  const out = g.node('Where', [positive, g.node('Div', [numerator, safe]), g.constant([0])]);
  g.output(out, 'out', ['batch', 'heads', 'queries', 'valueDim']);
  return g.model();
}
