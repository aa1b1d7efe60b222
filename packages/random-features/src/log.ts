/**
 * Natural logarithm from IEEE-754 basic operations only (+, −, ×, ÷ are correctly rounded
 * everywhere), so Gaussian samples are bit-identical across JavaScript engines; Math.log is
 * not required by the spec to be. x = 2^k · f with f in [√2/2, √2); ln f = 2·atanh(t),
 * t = (f − 1)/(f + 1), |t| ≤ 0.1716, summed as the odd series to t^27 (truncation < 1e-20).
 * Accurate to a few ulp for normal positive x; x must be finite and > 0.
 */
const view = new DataView(new ArrayBuffer(8));
const LN2_HI = 0.6931471803691238; // upper bits of ln 2 (k·LN2_HI is exact for |k| < 2^11)
const LN2_LO = 1.9082149292705877e-10; // ln 2 − LN2_HI
const SQRT2 = Math.SQRT2;

/**
 * @param x - a positive number
 */
export function detLog(x: number): number {
  if (!(x > 0) || !Number.isFinite(x))
    throw new RangeError(`detLog: x must be finite and > 0, got ${x}`);
  let scaled = x;
  let k = 0;
  if (scaled < 2.2250738585072014e-308) {
    // subnormal: scale into the normal range first
    scaled *= 2 ** 54;
    k -= 54;
  }
  view.setFloat64(0, scaled);
  const hi = view.getUint32(0);
  k += ((hi >>> 20) & 0x7ff) - 1023;
  view.setUint32(0, (hi & 0x800fffff) | (1023 << 20)); // exponent of f set to 0: f in [1, 2)
  let f = view.getFloat64(0);
  if (f > SQRT2) {
    f /= 2;
    k += 1;
  }
  const t = (f - 1) / (f + 1);
  const t2 = t * t;
  // 2·(t + t³/3 + ... + t^27/27), Horner in t²
  let series = 1 / 27;
  for (let n = 25; n >= 1; n -= 2) series = series * t2 + 1 / n;
  const lnF = 2 * t * series;
  return k * LN2_HI + (lnF + k * LN2_LO);
}
