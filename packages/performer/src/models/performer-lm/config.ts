/** Shapes and options of a PerformerLM (names follow performer-pytorch's, in camelCase). */
export interface PerformerLMConfig {
  numTokens: number;
  maxSeqLen: number;
  dim: number;
  depth: number;
  heads: number;
  /** Per-head size (default dim / heads). */
  dimHead?: number;
  /** Random vectors ω per head (m): the rows of each layer's projection. */
  nbFeatures: number;
  /**
   * The attention kernel's features (FAVOR attention only): 'positive' (default) — FAVOR+'s
   * positive random features of the softmax kernel, nbFeatures of them; 'hyperbolic' — the
   * lower-variance cosh variant of the same estimator, 2·nbFeatures features; 'relu' —
   * Performer-ReLU (generalized attention with f = ReLU on the projected inputs, the paper's other
   * variant; not an estimate of softmax).
   */
  kernel?: 'positive' | 'hyperbolic' | 'relu';
  /** Feed-forward width multiplier (default 4). */
  ffMult?: number;
  /** Causal language model (default true). */
  causal?: boolean;
  /** Rotary position embedding on queries and keys (default true). */
  rotary?: boolean;
  /** Add the fixed sinusoidal absolute position embedding to the tokens (default true). */
  absolutePositions?: boolean;
  /** Output projection tied to the token embedding (default false). */
  tieEmbed?: boolean;
  /** Biases on the q/k/v projections and on the attention output (default false). */
  qkvBias?: boolean;
  attnOutBias?: boolean;
  /** Added to every positive feature before its m^-1/2 ratio (performer-pytorch: 1e-4). */
  featureEps?: number;
  /**
   * The feature stabilizers: 'exact' (default) — no causal output depends on a later token, and
   * `generate` equals `logits` on every prefix; 'performer-pytorch' — that library's stabilizers
   * (a key maximum over the whole sequence, which leaks the future through featureEps), so that
   * its checkpoints give its logits. `loadPerformerPytorch` sets it.
   */
  stabilizer?: 'exact' | 'performer-pytorch';
  /**
   * 'favor' (default): FAVOR+ attention. 'softmax': exact softmax attention with the same weights —
   * the plain Transformer of the same shapes, for comparison and for converting checkpoints.
   */
  attention?: 'favor' | 'softmax';
  /**
   * Causal only: added to every entry of the key sum in the attention denominator (performer-pytorch:
   * 1e-6). Default 0.
   */
  denominatorEps?: number;
}

export type ResolvedConfig = Required<PerformerLMConfig>;

export function resolveConfig(fn: string, c: PerformerLMConfig): ResolvedConfig {
  if (typeof c !== 'object' || c === null) throw new TypeError(`${fn}: config is required`);
  for (const key of ['numTokens', 'maxSeqLen', 'dim', 'depth', 'heads', 'nbFeatures'] as const) {
    const v = c[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${fn}: config.${key} must be a positive integer, got ${String(v)}`);
    }
  }
  const dimHead = c.dimHead ?? c.dim / c.heads;
  if (!Number.isInteger(dimHead) || dimHead < 1) {
    throw new RangeError(
      `${fn}: config.dimHead must be a positive integer (default dim / heads = ${c.dim}/${c.heads}), got ${String(dimHead)}`,
    );
  }
  if ((c.rotary ?? true) && dimHead % 2 !== 0) {
    throw new RangeError(`${fn}: rotary embeddings need an even dimHead, got ${dimHead}`);
  }
  const r: ResolvedConfig = {
    numTokens: c.numTokens,
    maxSeqLen: c.maxSeqLen,
    dim: c.dim,
    depth: c.depth,
    heads: c.heads,
    dimHead,
    nbFeatures: c.nbFeatures,
    ffMult: c.ffMult ?? 4,
    causal: c.causal ?? true,
    rotary: c.rotary ?? true,
    absolutePositions: c.absolutePositions ?? true,
    tieEmbed: c.tieEmbed ?? false,
    qkvBias: c.qkvBias ?? false,
    attnOutBias: c.attnOutBias ?? false,
    featureEps: c.featureEps ?? 1e-4,
    stabilizer: c.stabilizer ?? 'exact',
    denominatorEps: c.denominatorEps ?? 0,
    attention: c.attention ?? 'favor',
    kernel: c.kernel ?? 'positive',
  };
  if (r.kernel !== 'positive' && r.kernel !== 'hyperbolic' && r.kernel !== 'relu') {
    throw new RangeError(
      `${fn}: config.kernel must be 'positive', 'hyperbolic' or 'relu', got ${JSON.stringify(c.kernel)}`,
    );
  }
  if (r.stabilizer === 'performer-pytorch' && r.kernel !== 'positive') {
    throw new RangeError(
      `${fn}: config.stabilizer 'performer-pytorch' applies to the 'positive' kernel only, got kernel '${r.kernel}'`,
    );
  }
  if (r.stabilizer !== 'exact' && r.stabilizer !== 'performer-pytorch') {
    throw new RangeError(
      `${fn}: config.stabilizer must be 'exact' or 'performer-pytorch', got ${JSON.stringify(c.stabilizer)}`,
    );
  }
  if (r.attention !== 'favor' && r.attention !== 'softmax') {
    throw new RangeError(
      `${fn}: config.attention must be 'favor' or 'softmax', got ${JSON.stringify(c.attention)}`,
    );
  }
  return r;
}
