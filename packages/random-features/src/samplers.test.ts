import { describe, expect, it } from 'vitest';
import { type Matrix, multiplyTransposed, rowSlice } from './matrix.js';
import { redrawSchedule } from './redraw.js';
import { createRng } from './rng.js';
import { gaussianIid, gaussianOrthogonal } from './samplers.js';

function rowNorms(w: Matrix): number[] {
  return Array.from({ length: w.rows }, (_, i) => {
    let s = 0;
    for (let t = 0; t < w.cols; t++) s += w.data[i * w.cols + t]! ** 2;
    return Math.sqrt(s);
  });
}

/** Max |W_b W_bᵀ − diag(s²)| over every block b of `d` rows. */
function blockOrthogonalityError(w: Matrix): number {
  let worst = 0;
  for (let start = 0; start < w.rows; start += w.cols) {
    const block = rowSlice(w, start, Math.min(w.cols, w.rows - start));
    const g = multiplyTransposed(block, block);
    const s2 = rowNorms(block).map((s) => s * s);
    for (let i = 0; i < g.rows; i++) {
      for (let j = 0; j < g.cols; j++) {
        const expected = i === j ? s2[i]! : 0;
        worst = Math.max(worst, Math.abs(g.data[i * g.cols + j]! - expected) / Math.max(1, s2[i]!));
      }
    }
  }
  return worst;
}

describe('gaussianOrthogonal', () => {
  it.each([
    [256, 64],
    [100, 64], // m not a multiple of d
    [16, 64], // m < d
    [7, 7],
    [1, 3],
  ])('rows=%i cols=%i: each block has W Wᵀ = diag(s²) to 1e-10', (rows, cols) => {
    for (const scaling of ['chi', 'sqrt-d'] as const) {
      const w = gaussianOrthogonal(rows, cols, { seed: 11, scaling });
      expect(w.rows).toBe(rows);
      expect(w.cols).toBe(cols);
      expect(w.data.length).toBe(rows * cols);
      expect(blockOrthogonalityError(w)).toBeLessThan(1e-10);
    }
  });

  it("'sqrt-d' rows all have norm √d", () => {
    const w = gaussianOrthogonal(100, 64, { seed: 2, scaling: 'sqrt-d' });
    for (const n of rowNorms(w)) expect(n).toBeCloseTo(8, 12);
  });

  it("'chi' row norms follow chi(d): mean and variance within 5 standard errors", () => {
    // For chi with k dof: E[s²] = k and Var[s²] = 2k exactly; test s² (sum of squares).
    const d = 16;
    const rows = 4000;
    const w = gaussianOrthogonal(rows, d, { seed: 3 });
    const s2 = rowNorms(w).map((s) => s * s);
    const mean = s2.reduce((a, b) => a + b, 0) / rows;
    const variance = s2.reduce((a, b) => a + (b - mean) ** 2, 0) / (rows - 1);
    // se(mean) = sqrt(2k/n); se(var) ≈ sqrt((μ4 − σ⁴)/n) with μ4 = 12k + 4k²... for chi² (k): μ4 = 12k(k+4)
    const k = d;
    expect(Math.abs(mean - k)).toBeLessThan(5 * Math.sqrt((2 * k) / rows));
    const mu4 = 12 * k * (k + 4);
    expect(Math.abs(variance - 2 * k)).toBeLessThan(5 * Math.sqrt((mu4 - (2 * k) ** 2) / rows));
  });

  it('same seed gives a bit-identical matrix; rng and seed are interchangeable', () => {
    const a = gaussianOrthogonal(70, 32, { seed: 123 });
    const b = gaussianOrthogonal(70, 32, { seed: 123 });
    const c = gaussianOrthogonal(70, 32, { rng: createRng(123) });
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(c.data.buffer))).toBe(true);
    expect(gaussianOrthogonal(70, 32, { seed: 124 }).data).not.toEqual(a.data);
    expect(Array.from(gaussianOrthogonal(3, 2, { seed: 0 }).data)).toEqual([
      1.3149181543663389, -0.8103926436636928, -0.8684662933207145, -1.4091466704090119,
      -0.9967380642791674, -0.09823634773478279,
    ]);
  });

  it.each([
    ['rows', 0, 4],
    ['rows', -3, 4],
    ['rows', 2.5, 4],
    ['rows', Number.NaN, 4],
    ['cols', 4, 0],
    ['cols', 4, -1],
    ['cols', 4, 0.5],
    ['cols', 4, Number.NaN],
  ])('rejects bad %s (%s×%s) with an error naming the argument', (name, rows, cols) => {
    expect(() => gaussianOrthogonal(rows, cols, { seed: 1 })).toThrow(
      new RegExp(`gaussianOrthogonal: ${name} must be a positive integer, got`),
    );
    expect(() => gaussianIid(rows, cols, { seed: 1 })).toThrow(
      new RegExp(`gaussianIid: ${name} must be a positive integer`),
    );
  });

  it('rejects unknown scaling and missing randomness', () => {
    // @ts-expect-error testing runtime validation
    expect(() => gaussianOrthogonal(4, 4, { seed: 1, scaling: 'unit' })).toThrow(
      /scaling must be 'chi' or 'sqrt-d'/,
    );
    // @ts-expect-error testing runtime validation
    expect(() => gaussianOrthogonal(4, 4, {})).toThrow(/a seed \(integer\) or an rng is required/);
    expect(() => gaussianIid(4, 4, { seed: 0.5 })).toThrow(/seed must be a safe integer, got 0.5/);
  });
});

describe('gaussianIid', () => {
  it('entries are N(0,1) (mean and variance within 5 standard errors) and seeded', () => {
    const w = gaussianIid(300, 100, { seed: 4 });
    const n = w.data.length;
    const mean = w.data.reduce((a, b) => a + b, 0) / n;
    const v = w.data.reduce((a, b) => a + b * b, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(gaussianIid(300, 100, { seed: 4 }).data).toEqual(w.data);
  });
});

describe('redrawSchedule', () => {
  it('gives the same projection within a window and a new one at each redraw step', () => {
    const s = redrawSchedule({ seed: 5, every: 10, rows: 8, cols: 4 });
    expect(s.windowAt(0)).toBe(0);
    expect(s.windowAt(9)).toBe(0);
    expect(s.windowAt(10)).toBe(1);
    expect(s.isRedrawStep(20)).toBe(true);
    expect(s.isRedrawStep(21)).toBe(false);
    const w0 = s.projectionAt(3).data.slice();
    expect(s.projectionAt(9).data).toEqual(w0);
    const w1 = s.projectionAt(10).data.slice();
    expect(w1).not.toEqual(w0);
    // a fresh schedule (e.g. training restarted) reproduces any window directly
    const again = redrawSchedule({ seed: 5, every: 10, rows: 8, cols: 4 });
    expect(again.projectionAt(15).data).toEqual(w1);
    expect(again.projectionAt(0).data).toEqual(w0);
    expect(blockOrthogonalityError(again.projectionAt(100))).toBeLessThan(1e-10);
  });

  it('validates its arguments', () => {
    expect(() => redrawSchedule({ seed: 1, every: 0, rows: 4, cols: 4 })).toThrow(
      /every must be a positive integer, got 0/,
    );
    expect(() => redrawSchedule({ seed: Number.NaN, every: 1, rows: 4, cols: 4 })).toThrow(
      /seed must be a safe integer, got NaN/,
    );
    const s = redrawSchedule({ seed: 1, every: 2, rows: 4, cols: 4, kind: 'iid' });
    expect(() => s.projectionAt(-1)).toThrow(/step must be a non-negative integer, got -1/);
  });
});
