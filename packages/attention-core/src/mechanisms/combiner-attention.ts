import { assertOptions, matMul, shapeString } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { mapGroupBlocks } from '../tensor/group-blocks.js';
import { expBelow, safeDivide } from '../tensor/masking.js';
import { rangeTaker } from '../tensor/range-taker.js';
import { validateMask, validateQkv } from '../tensor/validate.js';

export type CombinerVariant = 'fixed' | 'axial' | 'logsparse' | 'mixture';
export type CombinerPooling = 'max' | 'mean';

export interface CombinerAttentionOptions {
  variant: CombinerVariant;
  /** Segment size (fixed) or row length (axial); default ⌈√L⌉. L need not be a multiple. */
  blockSize?: number;
  causal?: boolean;
  /** [B, L] 1 keep, 0 pad: padded keys get no weight and do not enter any summary. */
  mask?: tf.Tensor;
  /** How a span's keys (and queries) are summarised: 'max' (the paper's default) or 'mean'. */
  pooling?: CombinerPooling;
}

/** Stands for −∞ in masked scores (exp of it is exactly 0 after the max shift). */
const MASKED = -1e30;

/**
 * Combiner (Ren et al., NeurIPS 2021): full attention at sparse cost. Every allowed key is
 * reached, either directly (its own softmax term) or through one span Ω: the span enters the
 * query's softmax with one logit q_i·k̄_Ω/√d (k̄_Ω the pooled keys of Ω) and spreads its weight
 * inside Ω by softmax_j(q̄_Ω·k_j/√d) (q̄_Ω the pooled queries at Ω's positions), all in one joint
 * softmax per query:
 *   out_i = [Σ_{j ∈ direct(i)} e^{q_i·k_j/√d} v_j + Σ_{Ω ∈ spans(i)} e^{q_i·k̄_Ω/√d} v̄_Ω] / Z_i,
 *   v̄_Ω = Σ_{j ∈ Ω} softmax_j(q̄_Ω·k_j/√d) v_j.
 * Plans (s = blockSize; positions beyond L and padded keys are left out everywhere):
 * - 'fixed': direct = the query's own segment of s positions (causal: up to i); spans = every
 *   other segment (causal: the earlier ones). O(L·(s + L/s)) — O(L√L) at s = √L.
 * - 'axial': rows of s positions; direct = the query's row (causal: up to i); one span per column
 *   c: position c of every other row (causal: of the earlier rows). O(L√L).
 * - 'logsparse': direct = the query itself; spans = its sibling at every level of the dyadic tree
 *   over the positions (causal: the siblings on its left — a Fenwick cover of the prefix), so
 *   log₂L disjoint power-of-two spans cover everything else. O(L log L).
 * - 'mixture': the average of the 'fixed' and 'logsparse' plans (the effective attention matrix is
 *   their average: rows still sum to 1, the support is still full).
 * A position's own segment or row is attended to directly and never counted again in a span.
 *
 * q, k [B, H, L, d], v [B, H, L, dv] → [B, H, L, dv].
 *
 * @param q - queries [B, H, Lq, d]
 * @param k - keys [B, H, Lk, d]
 * @param v - values [B, H, Lk, dv]
 * @param opts - `{ variant, blockSize, pooling, causal, mask }` (see CombinerAttentionOptions)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { combinerAttention } from '@kernel-attention/core';
 * const q = tf.randomNormal([1, 4, 1024, 32]);
 * const out = combinerAttention(q, q, q, { variant: 'fixed', causal: true }); // s = 32
 * ```
 */
export function combinerAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  opts: CombinerAttentionOptions,
): tf.Tensor4D {
  const fn = 'combinerAttention';
  assertOptions(fn, opts, '{ variant }');
  const variant = opts.variant;
  if (!['fixed', 'axial', 'logsparse', 'mixture'].includes(variant)) {
    throw new RangeError(
      `${fn}: variant must be 'fixed', 'axial', 'logsparse' or 'mixture', got ${JSON.stringify(variant)}`,
    );
  }
  const pooling = opts.pooling ?? 'max';
  if (pooling !== 'max' && pooling !== 'mean') {
    throw new RangeError(`${fn}: pooling must be 'max' or 'mean', got ${JSON.stringify(pooling)}`);
  }
  const causal = opts.causal ?? false;
  const shapes = validateQkv(fn, q, k, v, { causal });
  const { batch: B, heads: H, queryLength: L, keyLength: Lk, dim: d } = shapes;
  if (L !== Lk) {
    throw new RangeError(
      `${fn}: Combiner's plans need as many queries as keys, got q ${shapeString(q.shape)} and k ${shapeString(k.shape)}`,
    );
  }
  if (opts.mask !== undefined) validateMask(fn, opts.mask, shapes);
  const s = opts.blockSize ?? Math.ceil(Math.sqrt(L));
  if (!Number.isInteger(s) || s < 1 || s > L) {
    throw new RangeError(
      `${fn}: blockSize must be an integer in [1, L = ${L}], got ${String(opts.blockSize)}`,
    );
  }
  // blocks of (batch, head) groups, one tidy each, so that a block's scores stay near 4 M floats
  const perGroup = L * (variant === 'logsparse' ? 2 * Math.log2(2 * L) : s + Math.ceil(L / s)) * 4;
  const groups = Math.max(1, Math.min(B * H, Math.floor(BLOCK_FLOATS / perGroup)));
  return tf.tidy(() =>
    mapGroupBlocks(q, k, v, opts.mask, shapes, groups, ({ size: G, q: qb, k: kb, v: vb, keep }) => {
      const ctx: PlanInputs = {
        q: tf.mul(qb, 1 / Math.sqrt(d)), // scores are q·k/√d throughout
        k: kb,
        v: vb,
        keep: keep === null ? tf.ones([G, L]) : tf.reshape(keep, [G, L]),
        causal,
        pooling,
      };
      const plan = (name: 'fixed' | 'axial' | 'logsparse') =>
        name === 'fixed'
          ? fixedPlan(ctx, s)
          : name === 'axial'
            ? axialPlan(ctx, s)
            : logsparsePlan(ctx);
      return variant === 'mixture'
        ? tf.mul(tf.add(plan('fixed'), plan('logsparse')), 0.5)
        : plan(variant);
    }),
  );
}

/** Floats of scores one block of groups may hold (the plans keep a few tensors of that size). */
const BLOCK_FLOATS = 1 << 22;

interface PlanInputs {
  /** [G, L, d], already divided by √d. */
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  /** [G, L] float 0/1. */
  keep: tf.Tensor;
  causal: boolean;
  pooling: CombinerPooling;
}

/** Pads axis 1 of x [G, L, ...] with zeros to `to` positions. */
function padPositions(x: tf.Tensor, to: number): tf.Tensor {
  const L = x.shape[1]!;
  if (to === L) return x;
  return tf.pad(x, x.shape.map((_, i) => (i === 1 ? [0, to - L] : [0, 0])) as [number, number][]);
}

/**
 * Pools x [..., n, d] over axis −2 where keep [..., n] is 1 → [..., d] (0 where nothing is kept).
 * Max pooling takes the maximum over kept rows; mean pooling their average.
 */
function pool(x: tf.Tensor, keep: tf.Tensor, pooling: CombinerPooling): tf.Tensor {
  const k = tf.expandDims(keep, -1);
  const count = tf.sum(k, -2);
  if (pooling === 'mean') return safeDivide(tf.sum(tf.mul(x, k), -2), count);
  // masked rows → MASKED by arithmetic, not a broadcast where: tfjs-webgpu tiles rank-5
  // tensors on the CPU (synchronous reads, unavailable in Node)
  const m = tf.max(tf.add(tf.mul(x, k), tf.mul(tf.sub(k, 1), -MASKED)), -2);
  return tf.mul(m, tf.cast(tf.greater(count, 0), 'float32')); // 0 where nothing is kept
}

/**
 * Joint masked softmax over the last axis of several score blocks (each [..., n_b], with masks
 * broadcastable to them): returns the weights per block; rows with nothing allowed get 0.
 */
function jointSoftmax(blocks: { scores: tf.Tensor; allowed: tf.Tensor }[]): tf.Tensor[] {
  const masked = blocks.map(({ scores, allowed }) => {
    const ok = tf.cast(tf.broadcastTo(allowed, scores.shape), 'bool');
    return { ok, s: tf.where(ok, scores, tf.fill(scores.shape, MASKED)) };
  });
  let max = tf.max(masked[0]!.s, -1, true);
  for (const b of masked.slice(1)) max = tf.maximum(max, tf.max(b.s, -1, true));
  const exps = masked.map(({ ok, s }) => tf.mul(expBelow(s, max), tf.cast(ok, 'float32')));
  let z = tf.sum(exps[0]!, -1, true);
  for (const e of exps.slice(1)) z = tf.add(z, tf.sum(e, -1, true));
  return exps.map((e) => safeDivide(e, z));
}

/** v̄ for spans given pooled queries qBar [..., d] and their keys/values [..., n, ·] with keep. */
function spanValues(qBar: tf.Tensor, k: tf.Tensor, v: tf.Tensor, keep: tf.Tensor): tf.Tensor {
  const scores = tf.squeeze(matMul(tf.expandDims(qBar, -2), k, false, true), [-2]); // [..., n]
  const [w] = jointSoftmax([{ scores, allowed: keep }]);
  return tf.squeeze(matMul(tf.expandDims(w!, -2), v), [-2]); // [..., dv]
}

/** Lower-triangular (j ≤ i) or all-ones [n, n] as float 0/1. */
function withinBlock(n: number, causal: boolean): tf.Tensor2D {
  return causal ? tf.linalg.bandPart(tf.ones([n, n]), -1, 0) : tf.ones([n, n]);
}

/** 'fixed': segments of s positions. */
function fixedPlan({ q, k, v, keep, causal, pooling }: PlanInputs, s: number): tf.Tensor {
  const [G, L, d] = q.shape as [number, number, number];
  const dv = v.shape[2]!;
  const n = Math.ceil(L / s);
  const Lp = n * s;
  const seg = <T extends tf.Tensor>(x: T, w: number) =>
    tf.reshape(padPositions(x, Lp), [G, n, s, w]);
  const Q = seg(q, d);
  const K = seg(k, d);
  const V = seg(v, dv);
  const keepS = tf.reshape(padPositions(keep, Lp), [G, n, s]); // padding positions are not kept
  // direct: the own segment
  const direct = matMul(Q, K, false, true); // [G, n, s, s]
  const directOk = tf.mul(tf.expandDims(keepS, 2), withinBlock(s, causal)); // [G, n, s, s]
  // spans: the other segments
  const kBar = pool(K, keepS, pooling); // [G, n, d]
  const vBar = spanValues(pool(Q, keepS, pooling), K, V, keepS); // [G, n, dv]
  const spanKeep = tf.cast(tf.greater(tf.sum(keepS, -1), 0), 'float32'); // [G, n]
  const spanScores = matMul(tf.reshape(Q, [G, Lp, d]), kBar, false, true); // [G, Lp, n]
  const segOfQuery = tf.reshape(tf.tile(tf.reshape(tf.range(0, n), [n, 1]), [1, s]), [Lp, 1]);
  const segIds = tf.reshape(tf.range(0, n), [1, n]);
  const visible = causal ? tf.less(segIds, segOfQuery) : tf.notEqual(segIds, segOfQuery); // [Lp, n]
  const spanOk = tf.mul(tf.cast(visible, 'float32'), tf.expandDims(spanKeep, 1)); // [G, Lp, n]
  const [wd, ws] = jointSoftmax([
    { scores: tf.reshape(direct, [G, Lp, s]), allowed: tf.reshape(directOk, [G, Lp, s]) },
    { scores: spanScores, allowed: spanOk },
  ]);
  const out = tf.add(
    tf.reshape(matMul(tf.reshape(wd!, [G, n, s, s]), V), [G, Lp, dv]),
    matMul(ws!, vBar),
  );
  return tf.slice(out, [0, 0, 0], [G, L, dv]);
}

/**
 * Exclusive running pools over axis 2 of x [G, s, R, d] (rows a' < a; and for bidirectional also
 * a' > a, i.e. every row but a), with keep [G, s, R] → [G, s, R, d] and the kept counts [G, s, R].
 */
function rowExclusivePool(
  x: tf.Tensor,
  keep: tf.Tensor,
  causal: boolean,
  pooling: CombinerPooling,
): { pooled: tf.Tensor; count: tf.Tensor } {
  const R = x.shape[2]!;
  const k = tf.expandDims(keep, -1);
  const prefixCount = tf.cumsum(keep, 2, true); // exclusive: rows before
  const count = causal ? prefixCount : tf.sub(tf.sum(keep, 2, true), keep);
  if (pooling === 'mean') {
    const xs = tf.mul(x, k);
    const sum = causal ? tf.cumsum(xs, 2, true) : tf.sub(tf.sum(xs, 2, true), xs);
    return { pooled: safeDivide(sum, tf.expandDims(count, -1)), count };
  }
  // max: scans over the R rows (prefix, and suffix when bidirectional)
  const masked = tf.where(tf.cast(tf.broadcastTo(k, x.shape), 'bool'), x, tf.fill(x.shape, MASKED));
  const rows = rangeTaker(tf.transpose(masked, [2, 0, 1, 3]), 0); // [R, G, s, d] pieces
  const shape = [1, x.shape[0]!, x.shape[1]!, x.shape[3]!];
  const scan = (order: number[]) => {
    const out: tf.Tensor[] = new Array(R);
    let run: tf.Tensor = tf.fill(shape, MASKED);
    for (const a of order) {
      out[a] = run;
      run = tf.maximum(run, rows(a, 1));
    }
    return out;
  };
  const forward = scan([...Array(R).keys()]);
  let pooledRows = forward;
  if (!causal) {
    const backward = scan([...Array(R).keys()].reverse());
    pooledRows = forward.map((f, a) => tf.maximum(f, backward[a]!));
  }
  const pooled = tf.transpose(tf.concat(pooledRows, 0), [1, 2, 0, 3]);
  const any = tf.cast(
    tf.broadcastTo(tf.expandDims(tf.greater(count, 0), -1), pooled.shape),
    'bool',
  );
  return { pooled: tf.where(any, pooled, tf.zerosLike(pooled)), count };
}

/** 'axial': rows of s positions; one span per column over the other (causal: earlier) rows. */
function axialPlan({ q, k, v, keep, causal, pooling }: PlanInputs, s: number): tf.Tensor {
  const [G, L, d] = q.shape as [number, number, number];
  const dv = v.shape[2]!;
  const R = Math.ceil(L / s);
  const Lp = R * s;
  const grid = (x: tf.Tensor, w: number) => tf.reshape(padPositions(x, Lp), [G, R, s, w]);
  const Q = grid(q, d); // [G, R(a), s(b), d]
  const K = grid(k, d);
  const V = grid(v, dv);
  const keepG = tf.reshape(padPositions(keep, Lp), [G, R, s]);
  // direct: the own row
  const direct = matMul(Q, K, false, true); // [G, R, s, s]
  const directOk = tf.mul(tf.expandDims(keepG, 2), withinBlock(s, causal));
  // spans: column c over rows a' < a (causal) or a' ≠ a, one per (a, c)
  const col = (x: tf.Tensor) => tf.transpose(x, [0, 2, 1, 3]); // [G, s(c), R(a'), ·]
  const keepC = tf.transpose(keepG, [0, 2, 1]); // [G, s, R]
  const { pooled: kBar, count } = rowExclusivePool(col(K), keepC, causal, pooling); // [G, s, R(a), d]
  const { pooled: qBar } = rowExclusivePool(col(Q), keepC, causal, pooling);
  const rowsVisible = causal
    ? tf.sub(tf.linalg.bandPart(tf.ones([R, R]), -1, 0), tf.eye(R)) // a' < a
    : tf.sub(tf.ones([R, R]), tf.eye(R)); // a' ≠ a
  const inner = matMul(qBar, col(K), false, true); // [G, s, R(a), R(a')]
  const [wInner] = jointSoftmax([
    { scores: inner, allowed: tf.mul(rowsVisible, tf.expandDims(keepC, 2)) },
  ]);
  const vBar = matMul(wInner!, col(V)); // [G, s(c), R(a), dv]
  const spanScores = matMul(Q, tf.transpose(kBar, [0, 2, 1, 3]), false, true); // [G, R(a), s(b), s(c)]
  const spanOk = tf.expandDims(
    tf.cast(tf.greater(tf.transpose(count, [0, 2, 1]), 0), 'float32'),
    2,
  ); // [G, R, 1, s(c)]
  const [wd, ws] = jointSoftmax([
    { scores: direct, allowed: directOk },
    { scores: spanScores, allowed: spanOk },
  ]);
  const out = tf.add(matMul(wd!, V), matMul(ws!, tf.transpose(vBar, [0, 2, 1, 3]))); // [G, R, s, dv]
  return tf.slice(tf.reshape(out, [G, Lp, dv]), [0, 0, 0], [G, L, dv]);
}

/** 'logsparse': itself directly, and its sibling span at every level of the dyadic tree. */
function logsparsePlan({ q, k, v, keep, causal, pooling }: PlanInputs): tf.Tensor {
  const [G, L, d] = q.shape as [number, number, number];
  const dv = v.shape[2]!;
  let Lp = 1;
  while (Lp < L) Lp *= 2;
  const Q = padPositions(q, Lp);
  const K = padPositions(k, Lp);
  const V = padPositions(v, Lp);
  const keepP = padPositions(keep, Lp); // [G, Lp]
  const scores: tf.Tensor[] = [tf.expandDims(tf.sum(tf.mul(Q, K), -1), -1)]; // self, [G, Lp, 1]
  const allowed: tf.Tensor[] = [tf.expandDims(keepP, -1)];
  const siblingValues: { pairs: number; size: number; v: tf.Tensor }[] = [];
  const side = tf.reshape(tf.tensor1d(causal ? [0, 1] : [1, 1]), [1, 1, 2, 1]);
  for (let size = 1; size < Lp; size *= 2) {
    const pairs = Lp / (2 * size); // intervals of the next level, each split into two siblings
    // one tidy per level: only the level's scores, mask and sibling values outlive it
    const level = tf.tidy(() => {
      const Kl = tf.reshape(K, [G, pairs, 2, size, d]);
      const Ql = tf.reshape(Q, [G, pairs, 2, size, d]);
      const keepL = tf.reshape(keepP, [G, pairs, 2, size]);
      const kBar = pool(Kl, keepL, pooling); // [G, pairs, 2, d]
      const vBar = spanValues(
        pool(Ql, keepL, pooling),
        Kl,
        tf.reshape(V, [G, pairs, 2, size, dv]),
        keepL,
      );
      const spanKeep = tf.cast(tf.greater(tf.sum(keepL, -1), 0), 'float32'); // [G, pairs, 2]
      // the sibling of half h is half 1 − h: swap the halves. Causal: only the right half's
      // sibling (on its left) is in the past
      const swap = (x: tf.Tensor) => tf.reverse(x, 2);
      const ok = tf.mul(tf.expandDims(swap(spanKeep), 3), side); // [G, pairs, 2, 1]
      return {
        scores: tf.reshape(tf.sum(tf.mul(Ql, tf.expandDims(swap(kBar), 3)), -1), [G, Lp, 1]),
        allowed: tf.reshape(tf.mul(ok, tf.ones([1, 1, 1, size])), [G, Lp, 1]),
        v: tf.expandDims(swap(vBar), 3), // [G, pairs, 2, 1, dv]
      };
    });
    scores.push(level.scores);
    allowed.push(level.allowed);
    siblingValues.push({ pairs, size, v: level.v });
  }
  const [w] = jointSoftmax([{ scores: tf.concat(scores, 2), allowed: tf.concat(allowed, 2) }]);
  tf.dispose([...scores, ...allowed]);
  const take = rangeTaker(w!, 2); // [G, Lp, 1] per block: self, then the levels
  let out = tf.mul(take(0, 1), V);
  siblingValues.forEach(({ pairs, size, v: vs }, i) => {
    const next = tf.tidy(() =>
      tf.add(
        out,
        tf.reshape(tf.mul(tf.reshape(take(i + 1, 1), [G, pairs, 2, size, 1]), vs), [G, Lp, dv]),
      ),
    );
    out.dispose();
    out = next;
  });
  return tf.slice(out, [0, 0, 0], [G, L, dv]);
}
