/** Row types of the benchmark results JSON (bench/results), shared by the charts and the tables. */

/** One feature map at one setting of the accuracy bench (accuracy-wasm-node.json). */
export interface AccuracyRow {
  map: string;
  orthogonal: boolean;
  d: number;
  sigma: number;
  m: number;
  error: number;
}
