// The playground's parameters, without tfjs (the page imports these statically).

export const FEATURE_MAPS = [
  'positive',
  'hyperbolic',
  'trig',
  'oprf',
  'saderf',
  'relu',
  'elu+1',
] as const;
export type PlaygroundMap = (typeof FEATURE_MAPS)[number];

/** Where q, k, v come from: a trained model's heads on held-out text, or random Gaussians. */
export const INPUT_SOURCES = ['text', 'gaussian'] as const;
export type InputSource = (typeof INPUT_SOURCES)[number];

export interface PlaygroundParams {
  /**
   * 'text' (default): the q, k, v of one head of the pretrained fortunes model on held-out text —
   * real, peaked attention. 'gaussian': q, k ~ N(0, σ²), v ~ N(0, 1) — nearly uniform attention
   * at small σ, where predicting mean(v) is already close.
   */
  inputs: InputSource;
  /** Layer and head of the pretrained model ('text' inputs). */
  layer: number;
  head: number;
  /** Sequence length. */
  L: number;
  /** Head size (queries, keys and values). */
  d: number;
  /** Random features. */
  m: number;
  featureMap: PlaygroundMap;
  orthogonal: boolean;
  causal: boolean;
  seed: number;
  /** Standard deviation of the entries of q and k. */
  scale: number;
  /** favorAttention's variance-aware shrinkage toward mean(v) (bidirectional only). */
  shrinkage: boolean;
}

export const DEFAULT_PARAMS: PlaygroundParams = {
  inputs: 'text',
  layer: 1,
  head: 0,
  L: 128,
  d: 32,
  m: 64,
  featureMap: 'positive',
  orthogonal: true,
  causal: false,
  seed: 1,
  scale: 0.5,
  shrinkage: false,
};

/** Reads parameters from a query string (unknown or bad values keep the defaults). */
export function paramsFromQuery(search: string): PlaygroundParams {
  const q = new URLSearchParams(search);
  const num = (key: keyof PlaygroundParams, lo: number, hi: number, int = true) => {
    const v = Number(q.get(key));
    const ok =
      q.has(key) && Number.isFinite(v) && v >= lo && v <= hi && (!int || Number.isInteger(v));
    return ok ? v : (DEFAULT_PARAMS[key] as number);
  };
  const map = q.get('featureMap');
  const inputs = q.get('inputs');
  return {
    inputs: INPUT_SOURCES.includes(inputs as InputSource)
      ? (inputs as InputSource)
      : DEFAULT_PARAMS.inputs,
    layer: num('layer', 0, 3),
    head: num('head', 0, 3),
    L: num('L', 2, 16384),
    d: num('d', 2, 256),
    m: num('m', 2, 4096),
    featureMap: FEATURE_MAPS.includes(map as PlaygroundMap)
      ? (map as PlaygroundMap)
      : DEFAULT_PARAMS.featureMap,
    orthogonal: q.has('orthogonal') ? q.get('orthogonal') !== '0' : DEFAULT_PARAMS.orthogonal,
    causal: q.has('causal') ? q.get('causal') === '1' : DEFAULT_PARAMS.causal,
    seed: num('seed', 0, 2 ** 31),
    scale: num('scale', 0.01, 4, false),
    shrinkage: q.get('shrinkage') === '1',
  };
}

/** Cooperative cancellation for long sweeps. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}
