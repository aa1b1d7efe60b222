/**
 * Small dense linear algebra in Float64 for the dense-exponential feature fits (d×d matrices,
 * d ≤ a few hundred): the cyclic Jacobi eigenvalue method for symmetric matrices, and products.
 * Row-major Float64Arrays.
 */

/** Eigen-decomposition of a symmetric d×d matrix: M = V diag(values) Vᵀ, V's columns orthonormal. */
export function symmetricEigen(
  m: Float64Array,
  d: number,
): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        const x = a[i * d + j]! ** 2;
        total += x;
        if (i !== j) off += x;
      }
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[p * d + p]!;
        const aqq = a[q * d + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p]!;
          const akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k]!;
          const aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!;
          const vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = Float64Array.from({ length: d }, (_, i) => a[i * d + i]!);
  return { values, vectors: v };
}

/** C = A·B for row-major A [n, k], B [k, p]. */
export function matmul(
  a: Float64Array,
  b: Float64Array,
  n: number,
  k: number,
  p: number,
): Float64Array {
  const c = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const x = a[i * k + t]!;
      if (x === 0) continue;
      for (let j = 0; j < p; j++) c[i * p + j]! += x * b[t * p + j]!;
    }
  }
  return c;
}

/** Aᵀ of a row-major n×p matrix. */
export function transpose(a: Float64Array, n: number, p: number): Float64Array {
  const t = new Float64Array(n * p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) t[j * n + i] = a[i * p + j]!;
  return t;
}

/** V diag(f(values)) Vᵀ for a symmetric eigen-decomposition. */
export function spectralFunction(
  e: { values: Float64Array; vectors: Float64Array },
  d: number,
  f: (x: number) => number,
): Float64Array {
  const out = new Float64Array(d * d);
  const fv = e.values.map(f);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let s = 0;
      for (let l = 0; l < d; l++) s += e.vectors[i * d + l]! * fv[l]! * e.vectors[j * d + l]!;
      out[i * d + j] = s;
      out[j * d + i] = s;
    }
  }
  return out;
}
