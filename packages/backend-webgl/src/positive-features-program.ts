import type { PositiveFeaturesSpec } from '@kernel-attention/core';
import type { GPGPUProgram } from '@tensorflow/tfjs-backend-webgl';

/** A float literal GLSL accepts (integers need the ".0"). */
function glslFloat(v: number): string {
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/**
 * Per-row statistics of u = x·P (input U [G, L, m], from tfjs's packed matmul) and x [G, L, d],
 * packed (each texel holds rows r and r + 1): out[g, l, 0] = max of u' over the features (u' = u,
 * or |u| when symmetric), out[g, l, 1] = |x|².
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export class RowStatsProgram implements GPGPUProgram {
  readonly variableNames = ['U', 'X'];
  readonly outputShape: number[];
  readonly userCode: string;
  readonly packedInputs = true;
  readonly packedOutput = true;

  constructor(spec: PositiveFeaturesSpec) {
    const { groups: G, length: L, dim: d, features: m, symmetric } = spec;
    this.outputShape = [G, L, 2];
    this.userCode = `
      void main() {
        ivec3 c = getOutputCoords();
        vec2 best = vec2(-3.0e38);
        for (int f = 0; f < ${m}; f += 2) {
          vec4 u = getU(c.x, c.y, f);
          ${symmetric ? 'u = abs(u);' : ''}
          best = max(best, u.xz);
          ${m % 2 === 0 ? 'best = max(best, u.yw);' : `if (f + 1 < ${m}) { best = max(best, u.yw); }`}
        }
        vec2 n = vec2(0.0);
        for (int k = 0; k < ${d}; k += 2) {
          vec4 x = getX(c.x, c.y, k);
          n += x.xz * x.xz;
          ${d % 2 === 0 ? 'n += x.yw * x.yw;' : `if (k + 1 < ${d}) { n += x.yw * x.yw; }`}
        }
        setOutput(vec4(best.x, n.x, best.y, n.y));
      }
    `;
  }
}

/**
 * Maximum of the row maxima T[g, :, 0] per group → [G, 1].
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export class GroupMaxProgram implements GPGPUProgram {
  readonly variableNames = ['T'];
  readonly outputShape: number[];
  readonly userCode: string;

  constructor(groups: number, length: number) {
    this.outputShape = [groups, 1];
    this.userCode = `
      void main() {
        int g = getOutputCoords().x;
        float best = -3.0e38;
        for (int i = 0; i < ${length}; i++) { best = max(best, getT(g, i, 0)); }
        setOutput(best);
      }
    `;
  }
}

/**
 * The features from u (see PositiveFeatures in core's kernel-names.ts), packed like tfjs's own
 * elementwise programs (a texel is rows r, r + 1 × features f, f + 1):
 * exp(±u − shift − a|x|² + logRatio) + floor, with the row statistics T from RowStatsProgram and,
 * for 'group', the group maxima M from GroupMaxProgram. Replaces the composite path's softmax,
 * log, max and exponential programs (about ten) with this one and RowStatsProgram.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export class FeaturesEpilogueProgram implements GPGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly userCode: string;
  readonly packedInputs = true;
  readonly packedOutput = true;

  constructor(spec: PositiveFeaturesSpec) {
    const stabilizer = spec.stabilizer;
    const { groups: G, length: L, features: m, symmetric } = spec;
    const width = symmetric ? 2 * m : m;
    this.variableNames = stabilizer === 'group' ? ['U', 'T', 'M'] : ['U', 'T'];
    this.outputShape = [G, L, width];
    const shift =
      stabilizer === 'row'
        ? 'vec2(t.x, t.z)'
        : stabilizer === 'group'
          ? 'vec2(groupMax(c.x))'
          : 'vec2(0.0)';
    this.userCode = `
      // u at (row r, col) and (row r + 1, col) for any col (packed texels start at even columns)
      vec2 uAt(int b, int r, int col) {
        int even = 2 * (col / 2);
        vec4 t = getU(b, r, even);
        return col == even ? t.xz : t.yw;
      }
      ${
        stabilizer === 'group'
          ? `float groupMax(int g) {
        int even = 2 * (g / 2);
        vec4 t = getM(even, 0);
        return g == even ? t.x : t.z;
      }`
          : ''
      }
      void main() {
        ivec3 c = getOutputCoords();
        vec4 t = getT(c.x, c.y, 0);
        vec2 base = ${glslFloat(spec.logRatio)} - ${shift} - ${glslFloat(spec.halfNormScale)} * vec2(t.y, t.w);
        vec4 result = vec4(0.0);
        for (int dc = 0; dc < 2; dc++) {
          int col = c.z + dc;
          if (col >= ${width}) { break; }
          float sgn = 1.0;
          ${symmetric ? `if (col >= ${m}) { col -= ${m}; sgn = -1.0; }` : ''}
          vec2 v = exp(sgn * uAt(c.x, c.y, col) + base) + ${glslFloat(spec.floor)};
          if (dc == 0) { result.xz = v; } else { result.yw = v; }
        }
        setOutput(result);
      }
    `;
  }
}
