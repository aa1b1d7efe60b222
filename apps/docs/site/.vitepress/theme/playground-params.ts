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

export interface PlaygroundParams {
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
  return {
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
