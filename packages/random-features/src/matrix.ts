/** A dense row-major Float64 matrix. */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  /** Row-major values, length rows·cols. */
  readonly data: Float64Array;
}

/**
 * Allocates a zero matrix.
 *
 * @param rows - the number of rows
 * @param cols - the number of columns
 */
export function zeros(rows: number, cols: number): Matrix {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

/**
 * A·Bᵀ for row-major A [n×k] and B [m×k]; used for W Wᵀ checks.
 *
 * @param a - the left matrix [n, k]
 * @param b - the right matrix [p, k], used transposed
 */
export function multiplyTransposed(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.cols)
    throw new RangeError(`multiplyTransposed: cols differ (${a.cols} vs ${b.cols})`);
  const out = zeros(a.rows, b.rows);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.rows; j++) {
      let s = 0;
      for (let t = 0; t < a.cols; t++) s += a.data[i * a.cols + t]! * b.data[j * b.cols + t]!;
      out.data[i * b.rows + j] = s;
    }
  }
  return out;
}

/**
 * Rows [start, start+count) as a new matrix (a copy).
 *
 * @param a - the matrix
 * @param start - the first row
 * @param count - the number of rows
 */
export function rowSlice(a: Matrix, start: number, count: number): Matrix {
  return {
    rows: count,
    cols: a.cols,
    data: a.data.slice(start * a.cols, (start + count) * a.cols),
  };
}
