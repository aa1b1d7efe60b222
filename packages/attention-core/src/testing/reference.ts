/**
 * Slow, obviously-correct Float64 references (the test oracles): plain loops over nested arrays,
 * O(L²) per (batch, head). Layout [B][H][L][d] as returned by tensor.arraySync().
 */
export type Array4 = number[][][][];

export interface ReferenceOptions {
  causal?: boolean;
  /** [B][Lk], 1 keep, 0 pad. */
  mask?: number[][];
  /** [H][2L − 1]: every weight w_ij is multiplied by exp(b[h][j − i + L − 1]) (relative positions). */
  relativeBias?: number[][];
  /**
   * The first `memory` keys are persistent-memory slots: visible to every query, also when causal
   * (key j ≥ memory is context position j − memory). Default 0.
   */
  memory?: number;
}

/** out_i = Σ_j w_ij v_j / Σ_j w_ij over visible j, 0 if no visible key; w from `weight`. */
function weightedAverage(
  q: Array4,
  k: Array4,
  v: Array4,
  opts: ReferenceOptions,
  weights: (qi: number[], kRows: number[][], visible: boolean[]) => number[],
): Array4 {
  return weightedAverageWith(q, k, v, opts, weights);
}

/** weightedAverage for queries of any row type; `extraDen` adds to each query's denominator. */
function weightedAverageWith<Q>(
  q: Q[][][],
  k: Array4,
  v: Array4,
  opts: ReferenceOptions,
  weights: (qi: Q, kRows: number[][], visible: boolean[], b: number) => number[],
  extraDen?: (qi: Q) => number,
): Array4 {
  return q.map((qb, b) =>
    qb.map((qh, h) =>
      qh.map((qi, i) => {
        const kRows = k[b]![h]!;
        const M = opts.memory ?? 0;
        const visible = kRows.map(
          (_, j) =>
            j < M || ((!opts.causal || j - M <= i) && (opts.mask ? opts.mask[b]![j] !== 0 : true)),
        );
        const dv = v[b]![h]![0]!.length;
        if (!visible.some(Boolean)) return new Array<number>(dv).fill(0);
        let w = weights(qi, kRows, visible, b);
        const bias = opts.relativeBias?.[h];
        if (bias) w = w.map((wj, j) => wj * Math.exp(bias[j - i + kRows.length - 1]!));
        const out = new Array<number>(dv).fill(0);
        let z = extraDen ? extraDen(qi) : 0;
        w.forEach((wj, j) => {
          if (!visible[j]) return;
          z += wj;
          for (let t = 0; t < dv; t++) out[t]! += wj * v[b]![h]![j]![t]!;
        });
        return z === 0 ? out.map(() => 0) : out.map((x) => x / z);
      }),
    ),
  );
}

/**
 * Exact softmax attention with scale 1/√d.
 *
 * @param q - queries [B][H][Lq][d]
 * @param k - keys [B][H][Lk][d]
 * @param v - values [B][H][Lk][dv]
 * @param opts - `{ causal, mask, relativeBias, memory }` (optional)
 */
export function naiveSoftmaxAttention(
  q: Array4,
  k: Array4,
  v: Array4,
  opts: ReferenceOptions = {},
): Array4 {
  return weightedAverage(q, k, v, opts, (qi, kRows, visible) => {
    const scale = 1 / Math.sqrt(qi.length);
    const s = kRows.map((kj) => kj.reduce((acc, x, t) => acc + x * qi[t]!, 0) * scale);
    const max = Math.max(...s.filter((_, j) => visible[j]), Number.NEGATIVE_INFINITY);
    return s.map((x, j) => (visible[j] ? Math.exp(x - max) : 0));
  });
}

/**
 * Linear attention on given features: weights φ(q_i)·φ(k_j).
 *
 * @param qf - query features [B][H][Lq][m]
 * @param kf - key features [B][H][Lk][m]
 * @param v - values [B][H][Lk][dv]
 * @param opts - `{ causal, mask, relativeBias, memory }` (optional)
 */
export function naiveLinearAttention(
  qf: Array4,
  kf: Array4,
  v: Array4,
  opts: ReferenceOptions = {},
): Array4 {
  return weightedAverage(qf, kf, v, opts, (qi, kRows) =>
    kRows.map((kj) => kj.reduce((acc, x, t) => acc + x * qi[t]!, 0)),
  );
}

/**
 * The naive per-step causal loop: S_i = S_{i−1} + φ(k_i) v_iᵀ, z_i = z_{i−1} + φ(k_i),
 * out_i = φ(q_i)·S_i / φ(q_i)·z_i — the recurrence the chunked form must reproduce.
 *
 * @param qf - query features [B][H][L][m]
 * @param kf - key features [B][H][L][m]
 * @param v - values [B][H][L][dv]
 */
export function naiveCausalRecurrence(qf: Array4, kf: Array4, v: Array4): Array4 {
  return qf.map((qb, b) =>
    qb.map((qh, h) => {
      const m = qh[0]!.length;
      const dv = v[b]![h]![0]!.length;
      const S = Array.from({ length: m }, () => new Array<number>(dv).fill(0));
      const z = new Array<number>(m).fill(0);
      return qh.map((qi, i) => {
        const ki = kf[b]![h]![i]!;
        const vi = v[b]![h]![i]!;
        for (let f = 0; f < m; f++) {
          z[f]! += ki[f]!;
          for (let t = 0; t < dv; t++) S[f]![t]! += ki[f]! * vi[t]!;
        }
        const den = qi.reduce((acc, x, f) => acc + x * z[f]!, 0);
        return Array.from(
          { length: dv },
          (_, t) => qi.reduce((acc, x, f) => acc + x * S[f]![t]!, 0) / den,
        );
      });
    }),
  );
}

/** The exponents a = u − ½|x̂|² (u = W·x̂, or [u, −u] when hyperbolic) of one row, in Float64. */
function positiveExponents(
  x: number[],
  w: { rows: number; cols: number; data: Float64Array },
  hyperbolic = false,
): { a: number[]; u: number[]; n: number } {
  const { rows: m, cols: d, data } = w;
  const c = d ** -0.25;
  const u0 = Array.from({ length: m }, (_, r) =>
    x.reduce((acc, val, t) => acc + c * val * data[r * d + t]!, 0),
  );
  const u = hyperbolic ? [...u0, ...u0.map((z) => -z)] : u0;
  const n = (x.reduce((acc, val) => acc + val * val, 0) * c * c) / 2;
  return { a: u.map((z) => z - n), u, n };
}

/**
 * Positive softmax features in Float64 from a row-major projection W [m, d] (DESIGN.md formula):
 * φ(x) = m'^-1/2 (exp(a − s) + eps), a = u − ½|x̂|², s = the row's max of a for queries and the
 * max over all rows given for keys. `compatibility: 'performer-pytorch'` takes the maxima over u.
 *
 * @param x - inputs [B][H][L][d]
 * @param w - the projection W [m, d]
 * @param role - 'query' or 'key' (their stabilizers differ)
 * @param eps - the feature floor
 * @param opts - `{ hyperbolic }` (optional)
 */
export function naivePositiveFeatures(
  x: Array4,
  w: { rows: number; cols: number; data: Float64Array },
  role: 'query' | 'key',
  eps: number,
  opts: { hyperbolic?: boolean; compatibility?: 'performer-pytorch' } = {},
): Array4 {
  const compat = opts.compatibility === 'performer-pytorch';
  return x.map((xb) =>
    xb.map((xh) => {
      const rows = xh.map((xi) => positiveExponents(xi, w, opts.hyperbolic));
      const peak = (r: { a: number[]; u: number[] }) => Math.max(...(compat ? r.u : r.a));
      const keyMax = Math.max(...rows.map(peak));
      return rows.map((r) => {
        const s = role === 'query' ? peak(r) : keyMax;
        const m = r.a.length;
        return r.a.map((ai, f) =>
          compat
            ? (Math.exp(r.u[f]! - r.n - s) + eps) / Math.sqrt(m)
            : (Math.exp(ai - s) + eps) / Math.sqrt(m),
        );
      });
    }),
  );
}

/**
 * FAVOR+ attention with positive (or hyperbolic) features in Float64, exactly as DESIGN.md defines
 * it: for query i the key stabilizer is the largest exponent over the keys i sees (unpadded keys;
 * causal: keys j ≤ i), so no output depends on a later or padded key. The oracle of favorAttention,
 * of the streaming step and of the property suite.
 *
 * @param q - queries [B][H][Lq][d]
 * @param k - keys [B][H][Lk][d]
 * @param v - values [B][H][Lk][dv]
 * @param w - the projection W [m, d] (a Float64 Matrix, as gaussianOrthogonal returns)
 * @param opts - `{ eps, causal, mask, hyperbolic, … }`: eps as the feature map's
 */
export function naiveFavorAttention(
  q: Array4,
  k: Array4,
  v: Array4,
  w: { rows: number; cols: number; data: Float64Array },
  opts: ReferenceOptions & {
    eps: number;
    hyperbolic?: boolean;
    denominatorEps?: number;
    /** [B][Lk] weights multiplying each key's features (gated attention) */
    keyWeights?: number[][];
  },
): Array4 {
  const qf = q.map((qb) =>
    qb.map((qh) => qh.map((qi) => positiveExponents(qi, w, opts.hyperbolic))),
  );
  return weightedAverageWith(
    qf,
    k,
    v,
    opts,
    (qi, kRows, visible, b) => {
      const ks = kRows.map((kj) => positiveExponents(kj, w, opts.hyperbolic).a);
      const m = qi.a.length;
      const s = Math.max(...ks.filter((_, j) => visible[j]).map((a) => Math.max(...a)));
      const sq = Math.max(...qi.a);
      const phiQ = qi.a.map((ai) => (Math.exp(ai - sq) + opts.eps) / Math.sqrt(m));
      return ks.map(
        (a, j) =>
          (opts.keyWeights?.[b]?.[j] ?? 1) *
          a.reduce(
            (acc, aj, f) => acc + phiQ[f]! * ((Math.exp(aj - s) + opts.eps) / Math.sqrt(m)),
            0,
          ),
      );
    },
    opts.denominatorEps === undefined
      ? undefined
      : (qi) => {
          const m = qi.a.length;
          const sq = Math.max(...qi.a);
          return (
            opts.denominatorEps! *
            qi.a.reduce((acc, ai) => acc + (Math.exp(ai - sq) + opts.eps) / Math.sqrt(m), 0)
          );
        },
  );
}

/**
 * Max |a − b| / (atol + max|b|) over all entries; NaN anywhere counts as Infinity.
 *
 * @param a - the values to check (nested arrays or a flat array)
 * @param b - the reference, same shape
 * @param atol - absolute floor of the denominator (default 1e-6)
 */
export function maxRelativeError(a: Array4 | number[], b: Array4 | number[], atol = 1e-6): number {
  const fa = (a as unknown[]).flat(3) as number[];
  const fb = (b as unknown[]).flat(3) as number[];
  if (fa.length !== fb.length)
    throw new Error(`maxRelativeError: sizes differ (${fa.length} vs ${fb.length})`);
  const scale = atol + Math.max(...fb.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < fa.length; i++) {
    const e = Math.abs(fa[i]! - fb[i]!);
    if (Number.isNaN(e)) return Number.POSITIVE_INFINITY;
    worst = Math.max(worst, e / scale);
  }
  return worst;
}

export interface CombinerReferenceOptions {
  variant: 'fixed' | 'axial' | 'logsparse' | 'mixture';
  /** Segment size / row length (fixed, axial). */
  blockSize: number;
  causal?: boolean;
  /** [B][L], 1 keep, 0 pad. */
  mask?: number[][];
  pooling?: 'max' | 'mean';
}

/**
 * The positions query i attends to directly and its spans under one Combiner plan, before
 * padding is taken out (positions < L only).
 *
 * @param variant - 'fixed', 'axial' or 'logsparse'
 * @param L - the sequence length
 * @param s - the block size
 * @param causal - whether query i sees only keys ≤ i
 * @param i - the query position
 */
export function combinerPlan(
  variant: 'fixed' | 'axial' | 'logsparse',
  L: number,
  s: number,
  causal: boolean,
  i: number,
): { direct: number[]; spans: number[][] } {
  const range = (a: number, b: number) => {
    const out: number[] = [];
    for (let j = a; j < Math.min(b, L); j++) out.push(j);
    return out;
  };
  if (variant === 'logsparse') {
    const spans: number[][] = [];
    for (let size = 1; size < L; size *= 2) {
      const own = Math.floor(i / size);
      const sibling = own ^ 1;
      if (causal && sibling > own) continue;
      spans.push(range(sibling * size, sibling * size + size));
    }
    return { direct: [i], spans };
  }
  const n = Math.ceil(L / s);
  const a = Math.floor(i / s);
  const direct = range(a * s, a * s + s).filter((j) => !causal || j <= i);
  const spans: number[][] = [];
  if (variant === 'fixed') {
    for (let r = 0; r < n; r++) if (causal ? r < a : r !== a) spans.push(range(r * s, r * s + s));
  } else {
    for (let c = 0; c < s; c++) {
      const span: number[] = [];
      for (let r = 0; r < n; r++)
        if ((causal ? r < a : r !== a) && r * s + c < L) span.push(r * s + c);
      spans.push(span);
    }
  }
  return { direct, spans };
}

/**
 * Combiner attention from its plans by plain loops (Float64): the oracle of combinerAttention.
 *
 * @param q - queries [B][H][L][d]
 * @param k - keys [B][H][L][d]
 * @param v - values [B][H][L][dv]
 * @param opts - the variant, block size, pooling and causal flag
 */
export function naiveCombinerAttention(
  q: Array4,
  k: Array4,
  v: Array4,
  opts: CombinerReferenceOptions,
): Array4 {
  if (opts.variant === 'mixture') {
    const a = naiveCombinerAttention(q, k, v, { ...opts, variant: 'fixed' });
    const b = naiveCombinerAttention(q, k, v, { ...opts, variant: 'logsparse' });
    return a.map((ab, x) =>
      ab.map((ah, y) => ah.map((ai, i) => ai.map((val, t) => (val + b[x]![y]![i]![t]!) / 2))),
    );
  }
  const variant = opts.variant;
  const pooling = opts.pooling ?? 'max';
  const dot = (x: number[], y: number[]) => x.reduce((acc, xi, t) => acc + xi * y[t]!, 0);
  return q.map((qb, b) =>
    qb.map((qh, h) => {
      const L = qh.length;
      const d = qh[0]!.length;
      const kh = k[b]![h]!;
      const vh = v[b]![h]!;
      const dv = vh[0]!.length;
      const kept = (j: number) => (opts.mask ? opts.mask[b]![j] !== 0 : true);
      const scale = 1 / Math.sqrt(d);
      const poolRows = (rows: number[][]) =>
        rows[0]!.map((_, t) =>
          pooling === 'max'
            ? Math.max(...rows.map((r) => r[t]!))
            : rows.reduce((acc, r) => acc + r[t]!, 0) / rows.length,
        );
      return qh.map((qi, i) => {
        const plan = combinerPlan(variant, L, opts.blockSize, opts.causal ?? false, i);
        const terms: { w: number; value: number[] }[] = [];
        for (const j of plan.direct.filter(kept))
          terms.push({ w: dot(qi, kh[j]!) * scale, value: vh[j]! });
        for (const span of plan.spans.map((sp) => sp.filter(kept)).filter((sp) => sp.length > 0)) {
          const kBar = poolRows(span.map((j) => kh[j]!));
          const qBar = poolRows(span.map((j) => qh[j]!));
          const inner = span.map((j) => dot(qBar, kh[j]!) * scale);
          const mx = Math.max(...inner);
          const e = inner.map((x) => Math.exp(x - mx));
          const z = e.reduce((x, y) => x + y, 0);
          const value = new Array<number>(dv).fill(0);
          span.forEach((j, n) => {
            for (let t = 0; t < dv; t++) value[t]! += (e[n]! / z) * vh[j]![t]!;
          });
          terms.push({ w: dot(qi, kBar) * scale, value });
        }
        if (terms.length === 0) return new Array<number>(dv).fill(0);
        const mx = Math.max(...terms.map((t) => t.w));
        const out = new Array<number>(dv).fill(0);
        let z = 0;
        for (const { w, value } of terms) {
          const e = Math.exp(w - mx);
          z += e;
          for (let t = 0; t < dv; t++) out[t]! += e * value[t]!;
        }
        return out.map((x) => x / z);
      });
    }),
  );
}

/**
 * Relation-aware attention in its naive form (Shaw et al. 2018), the [Lq, Lk, d] tensors of
 * per-pair keys k_j + a^K_{r_ij} and values v_j + a^V_{r_ij} built out in full:
 *   e_ij = q_i·(k_j + a^K_{r_ij})/√d,  out_i = Σ_j softmax_j(e)_ij (v_j + a^V_{r_ij}).
 * relations [B][Lq][Lk] ids; relationKeys [R][d]; relationValues [R][dv].
 *
 * @param q - queries [B][H][L][d]
 * @param k - keys [B][H][L][d]
 * @param v - values [B][H][L][dv]
 * @param relations - relation ids [L][L]
 * @param relationKeys - key embeddings a^K [R][d]
 * @param relationValues - value embeddings a^V [R][dv]
 * @param opts - `{ causal, mask }` (optional)
 */
export function naiveRelationAwareAttention(
  q: Array4,
  k: Array4,
  v: Array4,
  relations: number[][][],
  relationKeys: number[][],
  relationValues: number[][],
  opts: { causal?: boolean; mask?: number[][] } = {},
): Array4 {
  return q.map((qb, b) =>
    qb.map((qh, h) =>
      qh.map((qi, i) => {
        const keys = k[b]![h]!.map((kj, j) =>
          kj.map((x, t) => x + relationKeys[relations[b]![i]![j]!]![t]!),
        );
        const vals = v[b]![h]!.map((vj, j) =>
          vj.map((x, t) => x + relationValues[relations[b]![i]![j]!]![t]!),
        );
        const visible = keys.map(
          (_, j) => (!opts.causal || j <= i) && (opts.mask ? opts.mask[b]![j] !== 0 : true),
        );
        const s = keys.map(
          (kj) => kj.reduce((a, x, t) => a + x * qi[t]!, 0) / Math.sqrt(qi.length),
        );
        const max = Math.max(...s.filter((_, j) => visible[j]), Number.NEGATIVE_INFINITY);
        const w = s.map((x, j) => (visible[j] ? Math.exp(x - max) : 0));
        const z = w.reduce((a, x) => a + x, 0);
        const dv = vals[0]!.length;
        return Array.from({ length: dv }, (_, t) =>
          z === 0 ? 0 : w.reduce((a, wj, j) => a + wj * vals[j]![t]!, 0) / z,
        );
      }),
    ),
  );
}
