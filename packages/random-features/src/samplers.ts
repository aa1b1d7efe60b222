import { type Matrix, zeros } from './matrix.js';
import { orthogonalFactor } from './qr.js';
import { type Rng, rngFrom } from './rng.js';
import { assertAllocatable, assertOptions, assertPositiveInt, describe } from './validate.js';

/** Where randomness comes from: an integer seed or an explicit generator. */
export type RandomSource = { seed: number; rng?: undefined } | { rng: Rng; seed?: undefined };

/** Row scaling of orthogonal projections. */
export type RowScaling = 'chi' | 'sqrt-d';

export type OrthogonalOptions = RandomSource & {
  /**
   * 'chi' (default): each row scaled by the norm of an independent N(0, I_cols) vector, so
   * rows have the norm distribution of IID Gaussian rows (chi with `cols` degrees of freedom).
   * 'sqrt-d': every row has norm √cols.
   */
  scaling?: RowScaling;
};

/**
 * IID Gaussian projection W ~ N(0, 1)^{rows×cols}, sampled in Float64 from the seed.
 *
 * @param rows - the number of projections m
 * @param cols - the dimension d
 * @param opts - `{ seed }` or `{ rng }`
 *
 * @example
 * ```ts
 * import { gaussianIid } from '@kernel-attention/random-features';
 * const w = gaussianIid(256, 64, { seed: 1 }); // w.data.length === 256 * 64
 * ```
 */
export function gaussianIid(rows: number, cols: number, opts: RandomSource): Matrix {
  assertPositiveInt('gaussianIid', 'rows', rows);
  assertPositiveInt('gaussianIid', 'cols', cols);
  assertOptions('gaussianIid', opts, '{ seed } or { rng }');
  assertAllocatable('gaussianIid', `a ${rows}×${cols} matrix`, rows * cols);
  const rng = rngFrom('gaussianIid', opts);
  const out = zeros(rows, cols);
  rng.normals(out.data);
  return out;
}

/**
 * Block-orthogonal Gaussian projection (Choromanski et al. 2020, FAVOR+ "ORF"): ceil(rows/cols)
 * independent blocks, each the Q factor of a cols×cols Gaussian matrix (rows orthonormal), the
 * last block truncated to the remaining rows; then every row is scaled by `scaling`. Within a
 * block W_b W_bᵀ = diag(s²) where s are the row scales.
 *
 * @param rows - the number of projections m (any, in blocks of d)
 * @param cols - the dimension d
 * @param opts - `{ seed or rng, scaling }`: 'chi' (default) or 'sqrt-d' row norms
 *
 * @example
 * ```ts
 * import { gaussianOrthogonal } from '@kernel-attention/random-features';
 * const w = gaussianOrthogonal(256, 64, { seed: 1, scaling: 'chi' }); // 4 blocks of 64 rows
 * ```
 */
export function gaussianOrthogonal(rows: number, cols: number, opts: OrthogonalOptions): Matrix {
  assertPositiveInt('gaussianOrthogonal', 'rows', rows);
  assertPositiveInt('gaussianOrthogonal', 'cols', cols);
  assertOptions('gaussianOrthogonal', opts, '{ seed } or { rng }');
  assertAllocatable('gaussianOrthogonal', `a ${rows}×${cols} matrix`, rows * cols);
  const scaling = opts.scaling ?? 'chi';
  if (scaling !== 'chi' && scaling !== 'sqrt-d') {
    throw new RangeError(
      `gaussianOrthogonal: scaling must be 'chi' or 'sqrt-d', got ${describe(scaling)}`,
    );
  }
  const rng = rngFrom('gaussianOrthogonal', opts);
  const blockRng = rng.split();
  const scaleRng = rng.split();
  const out = zeros(rows, cols);
  const square = zeros(cols, cols);
  for (let start = 0; start < rows; start += cols) {
    blockRng.normals(square.data);
    const q = orthogonalFactor(square);
    const take = Math.min(cols, rows - start);
    out.data.set(q.data.subarray(0, take * cols), start * cols);
  }
  const g = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    let s: number;
    if (scaling === 'sqrt-d') {
      s = Math.sqrt(cols);
    } else {
      scaleRng.normals(g);
      let n2 = 0;
      for (let t = 0; t < cols; t++) n2 += g[t]! * g[t]!;
      s = Math.sqrt(n2);
    }
    for (let t = 0; t < cols; t++) out.data[i * cols + t] = out.data[i * cols + t]! * s;
  }
  return out;
}
