import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** "Minus infinity" for the running maximum that stays finite in exp(a − b) (as core's NO_KEY_YET). */
const NO_KEY_YET = '-1e19';

/** Threads per workgroup; each owns feature rows t, t + T, t + 2T, … of the prefix state. */
const THREADS = 64;
/** Positions whose per-thread partial sums are reduced together (one barrier pair per block). */
const POSITIONS_PER_BLOCK = 8;

/**
 * Linear attention numerator and denominator in one program (WGSL), causal or bidirectional.
 *
 * Causal, one pass: out_i = Σ_{j≤i} e^{a_i + b_j}(q_i·k_j) v_j with per-position log-scales a
 * (QLOG) and b (KLOG). One workgroup per (group g, tile of 4 value columns); it walks the L
 * positions in order keeping its slice of the m×w prefix state S = Σ_{j≤i} e^{b_j − r} k_j v_jᵀ in
 * registers (thread t holds rows t + r·T as vec4), relative to the running maximum r of b (rescaled
 * by e^{r_old − r} when b_i exceeds it), so no L×m×w tensor exists, state never leaves the chip and
 * nothing overflows. For position i each thread adds e^{b_i − r}·k_i[f]·v_i to its rows and forms
 * e^{a_i + r}·Σ_f q_i[f]·S[f] over its rows; the T partial sums of a block of positions are reduced
 * through workgroup memory.
 * Bidirectional: first S = Σ_j k_j v_jᵀ over all Lk keys, then out_i = q_i·S for the Lq queries
 * with the same reduction. Specialised on (G, Lq, Lk, m, w, causal), all named in the cache key.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export class LinearAttentionProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [2], y: [0] }; // not flat: the shader indexes by workgroup itself
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  private readonly length: number;
  private readonly features: number;
  private readonly width: number;

  private readonly keyLength: number;
  private readonly causal: boolean;

  constructor(
    groups: number,
    length: number,
    features: number,
    width: number,
    causal = true,
    keyLength = length,
  ) {
    if (causal && keyLength !== length)
      throw new Error('LinearAttentionProgram: causal needs as many keys as queries');
    this.length = length;
    this.keyLength = keyLength;
    this.features = features;
    this.width = width;
    this.causal = causal;
    this.variableNames = causal ? ['Q', 'K', 'V', 'QLOG', 'KLOG'] : ['Q', 'K', 'V'];
    this.outputShape = [groups, length, width];
    this.dispatch = [Math.ceil(width / 4), groups, 1];
    this.shaderKey = `kaLinearAttention_${causal ? 'causal' : 'bidirectional'}_G${groups}_Lq${length}_Lk${keyLength}_m${features}_w${width}_T${THREADS}_P${POSITIONS_PER_BLOCK}`;
  }

  getUserCode(): string {
    const L = this.length;
    const Lk = this.keyLength;
    const m = this.features;
    const w = this.width;
    const rows = Math.ceil(m / THREADS);
    const P = POSITIONS_PER_BLOCK;
    return `
      var<workgroup> partial: array<vec4<f32>, ${P * THREADS}>;

      fn loadV(g: i32, i: i32, c0: i32) -> vec4<f32> {
        let base = (g * ${Lk} + i) * ${w};
        var v = vec4<f32>(0.0);
        for (var c = 0; c < 4; c++) {
          if (c0 + c < ${w}) { v[c] = V[base + c0 + c]; }
        }
        return v;
      }

      ${'fn main()'} {
        let len = uniforms.outShape.y; // = ${L}; reading uniforms keeps their binding in the layout
        let t = i32(localId.x);
        let c0 = i32(workgroupId.x) * 4;
        let g = i32(workgroupId.y);
        var S: array<vec4<f32>, ${rows}>;
        for (var r = 0; r < ${rows}; r++) { S[r] = vec4<f32>(0.0); }
        var runMax = ${NO_KEY_YET}; // running max of KLOG (causal)
        ${
          this.causal
            ? ''
            : `for (var j = 0; j < ${Lk}; j++) {
          let v = loadV(g, j, c0);
          let krow = (g * ${Lk} + j) * ${m};
          for (var r = 0; r < ${rows}; r++) {
            let f = t + r * ${THREADS};
            if (f < ${m}) { S[r] = S[r] + K[krow + f] * v; }
          }
        }`
        }
        for (var i0 = 0; i0 < len; i0 += ${P}) {
          for (var p = 0; p < ${P}; p++) {
            let i = i0 + p;
            var acc = vec4<f32>(0.0);
            if (i < ${L}) {
              let row = (g * ${L} + i) * ${m};
              ${
                this.causal
                  ? `let b = KLOG[g * ${L} + i];
              if (b > runMax) {
                let decay = exp(runMax - b);
                for (var r = 0; r < ${rows}; r++) { S[r] = S[r] * decay; }
                runMax = b;
              }
              let v = loadV(g, i, c0) * exp(b - runMax);`
                  : ''
              }
              for (var r = 0; r < ${rows}; r++) {
                let f = t + r * ${THREADS};
                if (f < ${m}) {
                  ${this.causal ? `S[r] = S[r] + K[row + f] * v;` : ''}
                  acc = acc + Q[row + f] * S[r];
                }
              }
              ${this.causal ? `acc = acc * exp(QLOG[g * ${L} + i] + runMax);` : ''}
            }
            partial[p * ${THREADS} + t] = acc;
          }
          workgroupBarrier();
          if (t < ${P}) {
            let i = i0 + t;
            if (i < ${L}) {
              var sum = vec4<f32>(0.0);
              for (var u = 0; u < ${THREADS}; u++) { sum = sum + partial[t * ${THREADS} + u]; }
              let out = (g * ${L} + i) * ${w};
              for (var c = 0; c < 4; c++) {
                if (c0 + c < ${w}) { setOutputAtIndex(out + c0 + c, sum[c]); }
              }
            }
          }
          workgroupBarrier();
        }
      }
    `;
  }
}
