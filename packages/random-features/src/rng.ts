import { detLog } from './log.js';
import { threefry2x32 } from './threefry.js';
import { describe } from './validate.js';

/**
 * A deterministic, splittable random number generator.
 *
 * Counter-based: word i of a stream is a pure function of (key, i) (Threefry-2x32-20), so
 * the same seed gives the same numbers on every engine and machine, and streams can be
 * split without any shared state.
 *
 * @example
 * ```ts
 * import { createRng } from '@kernel-attention/random-features';
 * const rng = createRng(42);
 * const z = rng.normal();          // N(0, 1)
 * const child = rng.split();       // an independent stream
 * const step7 = rng.fold(7);       // derived from (key, 7); does not advance rng
 * ```
 */
export interface Rng {
  /** The 64-bit Threefry key as two uint32 words. */
  readonly key: readonly [number, number];
  /** Next uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number;
  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number;
  /** Standard normal N(0, 1) double (Marsaglia's polar method, deterministic log). */
  normal(): number;
  /**
   * Fill `out` with N(0, 1) samples and return it.
   *
   * @param out - the array to fill
   */
  normals(out: Float64Array): Float64Array;
  /** A new, independent stream; each call returns a different one (advances a split counter). */
  split(): Rng;
  /**
   * The stream derived from (key, n): the same for the same n, independent of this stream's position.
   *
   * @param n - any integer in [0, 2^31)
   */
  fold(n: number): Rng;
}

/** Counter words 1 (high) at or above this are reserved for key derivation, not streams. */
const DOMAIN_FOLD = 0x80000000;
const DOMAIN_SPLIT = 0xc0000000;
const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

class ThreefryRng implements Rng {
  readonly key: readonly [number, number];
  private counter = 0; // block index, < 2^52 (far beyond any use here)
  private buffered: number | null = null;
  private splits = 0;
  private spareNormal: number | null = null;

  constructor(k0: number, k1: number) {
    this.key = [k0 >>> 0, k1 >>> 0];
  }

  nextUint32(): number {
    if (this.buffered !== null) {
      const w = this.buffered;
      this.buffered = null;
      return w;
    }
    const c = this.counter++;
    const [w0, w1] = threefry2x32(
      this.key[0],
      this.key[1],
      c % TWO_POW_32,
      Math.floor(c / TWO_POW_32),
    );
    this.buffered = w1;
    return w0;
  }

  uniform(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / TWO_POW_53;
  }

  normal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    // Marsaglia polar: (u, v) uniform in the unit disc; s = u² + v²;
    // u·√(−2 ln s / s) and v·√(−2 ln s / s) are independent N(0, 1).
    for (;;) {
      const u = 2 * this.uniform() - 1;
      const v = 2 * this.uniform() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * detLog(s)) / s);
        this.spareNormal = v * f;
        return u * f;
      }
    }
  }

  normals(out: Float64Array): Float64Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }

  split(): Rng {
    const n = this.splits++;
    return this.derive(n, DOMAIN_SPLIT);
  }

  fold(n: number): Rng {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`Rng.fold: n must be a non-negative safe integer, got ${describe(n)}`);
    }
    return this.derive(n, DOMAIN_FOLD);
  }

  private derive(n: number, domain: number): Rng {
    const lo = n % TWO_POW_32;
    const hi = Math.floor(n / TWO_POW_32); // < 2^21 for safe integers
    const [k0, k1] = threefry2x32(this.key[0], this.key[1], lo, (domain | hi) >>> 0);
    return new ThreefryRng(k0, k1);
  }
}

/**
 * Create a generator from an integer seed (any safe integer, negative allowed).
 * Throws a RangeError naming `seed` for NaN, fractional or unsafe values.
 *
 * @param seed - an integer seed (the same seed gives the same stream everywhere)
 */
export function createRng(seed: number): Rng {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new RangeError(`createRng: seed must be a safe integer, got ${describe(seed)}`);
  }
  const lo = ((seed % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  // Mix the seed once so that nearby seeds give unrelated keys.
  const [k0, k1] = threefry2x32(0x9e3779b9, 0x7f4a7c15, lo, hi);
  return new ThreefryRng(k0, k1);
}

/**
 * Accepts either `{ seed }` or `{ rng }` and returns a generator; names `fn` in errors.
 *
 * @param fn - the calling function's name, for error messages
 * @param opts - `{ seed }` or `{ rng }`
 */
export function rngFrom(fn: string, opts: { seed?: number; rng?: Rng } | undefined): Rng {
  if (opts?.rng !== undefined) {
    if (opts.seed !== undefined) throw new TypeError(`${fn}: pass either seed or rng, not both`);
    const r = opts.rng as Partial<Rng> | null;
    const methods = ['nextUint32', 'uniform', 'normal', 'normals', 'split', 'fold'] as const;
    const missing =
      typeof r === 'object' && r !== null ? methods.filter((k) => typeof r[k] !== 'function') : [];
    if (typeof r !== 'object' || r === null || missing.length > 0) {
      throw new TypeError(
        `${fn}: rng must be an Rng from createRng(seed)${missing.length > 0 ? ` (it lacks ${missing.join(', ')})` : ''}, got ${describe(opts.rng)}`,
      );
    }
    return opts.rng;
  }
  if (opts?.seed === undefined) {
    throw new TypeError(
      `${fn}: a seed (integer) or an rng is required; randomness is always explicit (got options ${describe(opts)})`,
    );
  }
  if (!Number.isSafeInteger(opts.seed)) {
    throw new RangeError(`${fn}: seed must be a safe integer, got ${describe(opts.seed)}`);
  }
  return createRng(opts.seed);
}
