import * as tf from '@tensorflow/tfjs-core';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * ln Γ(x) for x > 0 in float64 (JS numbers): the shift-and-Stirling method of lgamma below, shifted
 * to z ≥ 10 and with one more series term (truncation error below 1e-13).
 */
export function lgammaNumber(x: number): number {
  if (!(x > 0)) return x === 0 ? Number.POSITIVE_INFINITY : Number.NaN;
  let shift = 0;
  let z = x;
  while (z < 10) {
    shift += Math.log(z);
    z += 1;
  }
  const r = 1 / z;
  const r2 = r * r;
  const series = r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188))));
  return (z - 0.5) * Math.log(z) - z + HALF_LOG_2PI + series - shift;
}

/**
 * ln Γ(x) elementwise for x > 0 (tfjs has no lgamma). For x ≥ 7 Stirling's series
 *   (x − ½) ln x − x + ½ ln 2π + 1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷);
 * below, the recurrence ln Γ(x) = ln Γ(x + 7) − Σ_{i<7} ln(x + i). Both branches see clamped
 * inputs (so neither produces NaN or Inf that a gradient could carry), and tf.where picks one.
 * Relative error about float32 rounding. Differentiable (its derivative is the digamma function).
 * x ≤ 0 gives NaN (Γ has poles or changes sign there).
 */
export function lgamma(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const stirling = (z: tf.Tensor) => {
      const r = tf.reciprocal(z);
      const r2 = tf.square(r);
      // r·(1/12 − r²(1/360 − r²(1/1260 − r²/1680)))
      const inner = tf.sub(1 / 1260, tf.div(r2, 1680));
      const mid = tf.sub(1 / 360, tf.mul(r2, inner));
      const series = tf.mul(r, tf.sub(1 / 12, tf.mul(r2, mid)));
      return tf.add(tf.sub(tf.mul(tf.sub(z, 0.5), tf.log(z)), z), tf.add(series, HALF_LOG_2PI));
    };
    const large = tf.greaterEqual(x, 7);
    const big = stirling(tf.maximum(x, 7));
    const small = tf.clipByValue(x, 1e-30, 7);
    let logs = tf.log(small);
    for (let i = 1; i < 7; i++) logs = tf.add(logs, tf.log(tf.add(small, i)));
    const shifted = tf.sub(stirling(tf.add(small, 7)), logs);
    const out = tf.where(large, big, shifted);
    // x ≤ 0: NaN, as documented (tf.where keeps gradients finite for x > 0)
    return tf.where(tf.greaterEqual(tf.neg(x), 0), tf.fill(x.shape, Number.NaN), out);
  });
}
