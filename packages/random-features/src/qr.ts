import type { Matrix } from './matrix.js';
import { describe } from './validate.js';

/**
 * The orthogonal factor Q of A = QR for a square n×n matrix, by Householder reflections in
 * Float64, with the sign convention diag(R) > 0. With that convention Q of a Gaussian matrix
 * is exactly Haar-distributed on O(n) (Mezzadri 2007, "How to generate random matrices from
 * the classical compact groups"). Returns Q row-major; its rows (and columns) are orthonormal.
 *
 * @param a - a square matrix [d, d]
 */
export function orthogonalFactor(a: Matrix): Matrix {
  const m = a as Partial<Matrix> | null;
  if (
    typeof m !== 'object' ||
    m === null ||
    !Number.isInteger(m.rows) ||
    !Number.isInteger(m.cols) ||
    !(m.data instanceof Float64Array) ||
    m.data.length !== m.rows! * m.cols!
  ) {
    throw new TypeError(
      `orthogonalFactor: a must be a Matrix { rows, cols, data: Float64Array of rows·cols values }, got ${describe(a)}`,
    );
  }
  const n = a.rows;
  if (a.cols !== n)
    throw new RangeError(`orthogonalFactor: matrix must be square, got ${a.rows}×${a.cols}`);
  const r = Float64Array.from(a.data); // reduced in place to R
  const vs: Float64Array[] = []; // Householder vectors, v_k has support k..n-1
  const signs = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = k; i < n; i++) norm += r[i * n + k]! ** 2;
    norm = Math.sqrt(norm);
    const x0 = r[k * n + k]!;
    const alpha = x0 >= 0 ? -norm : norm; // reflect x onto alpha·e_k, avoiding cancellation
    const v = new Float64Array(n);
    for (let i = k; i < n; i++) v[i] = r[i * n + k]!;
    v[k] = x0 - alpha;
    let vnorm2 = 0;
    for (let i = k; i < n; i++) vnorm2 += v[i]! ** 2;
    if (vnorm2 > 0) {
      // apply H = I - 2 v vᵀ / (vᵀv) to the remaining columns of r
      for (let j = k; j < n; j++) {
        let dot = 0;
        for (let i = k; i < n; i++) dot += v[i]! * r[i * n + j]!;
        const f = (2 * dot) / vnorm2;
        for (let i = k; i < n; i++) r[i * n + j] = r[i * n + j]! - f * v[i]!;
      }
    }
    vs.push(vnorm2 > 0 ? v.map((x) => x / Math.sqrt(vnorm2)) : v);
    signs[k] = r[k * n + k]! < 0 ? -1 : 1;
  }
  // Q = H_0 H_1 ... H_{n-1}: apply the reflections to the identity in reverse order.
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k]!;
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let i = k; i < n; i++) dot += v[i]! * q[i * n + j]!;
      if (dot === 0) continue;
      for (let i = k; i < n; i++) q[i * n + j] = q[i * n + j]! - 2 * dot * v[i]!;
    }
  }
  // Flip columns so that diag(R) > 0 (Q ← Q·diag(sign(R_kk))).
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) q[i * n + j] = q[i * n + j]! * signs[j]!;
  return { rows: n, cols: n, data: q };
}
