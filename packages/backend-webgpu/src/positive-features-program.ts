import type { FeatureStabilizer, PositiveFeaturesSpec } from '@kernel-attention/core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** Threads per workgroup; thread t computes features t, t + T, … of every row of its tile. */
const THREADS = 64;
/** Rows per workgroup (at most): each projection value read from memory serves this many rows. */
const MAX_ROWS = 8;
/** Workgroups per dispatch dimension (WebGPU guarantees 65535). */
const MAX_DIM = 32768;
/** Floats of the input tile in workgroup memory (12 KiB of the 16 KiB WebGPU guarantees). */
const TILE_FLOATS = 3072;
/** Largest d the fused program takes (one row per workgroup at that size). */
export const MAX_FUSED_DIM = TILE_FLOATS;

/** The 2-D dispatch covering `workgroups` (x fastest); the shader rebuilds the linear index. */
function dispatchFor(workgroups: number): [number, number, number] {
  return [Math.min(workgroups, MAX_DIM), Math.ceil(workgroups / MAX_DIM), 1];
}

/**
 * Positive (or hyperbolic) softmax features in one WGSL program (see PositiveFeatures in core's
 * kernel-names.ts): each workgroup takes ROWS rows of x into workgroup memory; thread t computes
 * u = x·P for its features of every row (each P value read once per tile, reused ROWS times),
 * then the row maxima are reduced through workgroup memory and every feature is written as
 * exp(±u − shift − a|x|² + logRatio) + floor. No [N, m] projection ever reaches memory.
 *
 * `mode`: 'row' and 'none' write features; 'group' writes features with the shift read from
 * input S [G, 1] (one per group); 'rowmax' writes only the row maxima ℓ [G, L] of u'.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export class PositiveFeaturesProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0], y: [1] }; // not flat: the shader indexes by workgroup itself
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  private readonly spec: PositiveFeaturesSpec;
  private readonly mode: FeatureStabilizer | 'rowmax';
  private readonly rows: number;

  constructor(spec: PositiveFeaturesSpec, mode: FeatureStabilizer | 'rowmax') {
    const { groups: G, length: L, dim: d, features: m, symmetric } = spec;
    if (d > MAX_FUSED_DIM) {
      throw new RangeError(
        `PositiveFeaturesProgram: dim must be at most ${MAX_FUSED_DIM}, got ${d}`,
      );
    }
    this.spec = spec;
    this.mode = mode;
    this.rows = Math.max(1, Math.min(MAX_ROWS, Math.floor(TILE_FLOATS / d)));
    const ROWS = this.rows;
    this.variableNames = mode === 'group' ? ['X', 'P', 'S'] : ['X', 'P'];
    this.outputShape = mode === 'rowmax' ? [G, L] : [G, L, symmetric ? 2 * m : m];
    this.dispatch = dispatchFor(Math.ceil((G * L) / ROWS));
    this.shaderKey = `kaPositiveFeatures_${mode}_${symmetric ? 'sym' : 'pos'}_G${G}_L${L}_d${d}_m${m}_a${spec.halfNormScale}_r${spec.logRatio}_f${spec.floor}_T${THREADS}_R${ROWS}`;
  }

  getUserCode(): string {
    const { groups: G, length: L, dim: d, features: m, symmetric } = this.spec;
    const N = G * L;
    const F = Math.ceil(m / THREADS); // features per thread
    const width = symmetric ? 2 * m : m;
    const mode = this.mode;
    const ROWS = this.rows;
    const needMax = mode === 'row' || mode === 'rowmax';
    const f32 = (v: number) => (Number.isInteger(v) ? `${v}.0` : `${v}`);
    const shift = mode === 'row' ? 'rowMax[r]' : mode === 'group' ? `S[(row0 + r) / ${L}]` : '0.0';
    const writes =
      mode === 'rowmax'
        ? `if (t < ${ROWS} && row0 + t < ${N}) { setOutputAtIndex(row0 + t, rowMax[t]); }`
        : `for (var r = 0; r < ${ROWS}; r++) {
          let row = row0 + r;
          if (row >= ${N}) { break; }
          let offset = ${f32(this.spec.logRatio)} - ${shift} - ${f32(this.spec.halfNormScale)} * norm2[r];
          for (var c = 0; c < ${F}; c++) {
            let f = t + c * ${THREADS};
            if (f < ${m}) {
              let u = acc[r * ${F} + c];
              setOutputAtIndex(row * ${width} + f, exp(u + offset) + ${f32(this.spec.floor)});
              ${symmetric ? `setOutputAtIndex(row * ${width} + ${m} + f, exp(-u + offset) + ${f32(this.spec.floor)});` : ''}
            }
          }
        }`;
    return `
      var<workgroup> xs: array<f32, ${ROWS * d}>;
      var<workgroup> partial: array<f32, ${ROWS * THREADS}>;
      var<workgroup> rowMax: array<f32, ${ROWS}>;
      var<workgroup> norm2: array<f32, ${ROWS}>;

      ${'fn main()'} {
        let shapeX = uniforms.outShape.x; // reading uniforms keeps their binding in the layout
        let t = i32(localId.x);
        let tile = i32(workgroupId.y) * ${MAX_DIM} + i32(workgroupId.x);
        let row0 = tile * ${ROWS};
        for (var e = t; e < ${ROWS * d}; e += ${THREADS}) {
          let row = row0 + e / ${d};
          var value = 0.0;
          if (row < ${N}) { value = X[row * ${d} + e % ${d}]; }
          xs[e] = value;
        }
        workgroupBarrier();
        var acc: array<f32, ${ROWS * F}>;
        for (var i = 0; i < ${ROWS * F}; i++) { acc[i] = 0.0; }
        for (var k = 0; k < ${d}; k++) {
          for (var c = 0; c < ${F}; c++) {
            let f = t + c * ${THREADS};
            if (f < ${m}) {
              let p = P[k * ${m} + f];
              for (var r = 0; r < ${ROWS}; r++) { acc[r * ${F} + c] += xs[r * ${d} + k] * p; }
            }
          }
        }
        ${
          needMax
            ? `for (var r = 0; r < ${ROWS}; r++) {
          var best = -3.0e38;
          for (var c = 0; c < ${F}; c++) {
            if (t + c * ${THREADS} < ${m}) {
              let u = acc[r * ${F} + c];
              best = max(best, ${symmetric ? 'abs(u)' : 'u'});
            }
          }
          partial[r * ${THREADS} + t] = best;
        }`
            : ''
        }
        if (t < ${ROWS}) {
          var s = 0.0;
          for (var k = 0; k < ${d}; k++) { let v = xs[t * ${d} + k]; s += v * v; }
          norm2[t] = s;
        }
        workgroupBarrier();
        if (${needMax} && t < ${ROWS}) {
          var best = -3.0e38;
          for (var u = 0; u < ${THREADS}; u++) { best = max(best, partial[t * ${THREADS} + u]); }
          rowMax[t] = best;
        }
        workgroupBarrier();
        ${writes}
      }
    `;
  }
}

/**
 * The maximum of ℓ [G, L] per group → [G, 1] (one workgroup per group).
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export class GroupMaxProgram implements WebGPUProgram {
  readonly variableNames = ['A'];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0], y: [1] }; // not flat, as above
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  private readonly length: number;

  constructor(groups: number, length: number) {
    this.length = length;
    this.outputShape = [groups, 1];
    this.dispatch = dispatchFor(groups);
    this.shaderKey = `kaGroupMax_L${length}_T${THREADS}`;
  }

  getUserCode(): string {
    const L = this.length;
    return `
      var<workgroup> partial: array<f32, ${THREADS}>;

      ${'fn main()'} {
        let groups = uniforms.outShape.x;
        let t = i32(localId.x);
        let g = i32(workgroupId.y) * ${MAX_DIM} + i32(workgroupId.x);
        var best = -3.0e38;
        for (var i = t; i < ${L}; i += ${THREADS}) { best = max(best, A[g * ${L} + i]); }
        partial[t] = best;
        workgroupBarrier();
        if (t == 0 && g < groups) {
          var all = -3.0e38;
          for (var u = 0; u < ${THREADS}; u++) { all = max(all, partial[u]); }
          setOutputAtIndex(g, all);
        }
      }
    `;
  }
}
