import { describe, expect, it } from 'vitest';
import { detLog } from './log.js';
import { threefry2x32 } from './threefry.js';

describe('threefry2x32', () => {
  // Known-answer vectors of Threefry-2x32-20 (Random123's kat_vectors, also JAX's tests).
  it.each([
    [
      [0, 0],
      [0, 0],
      [0x6b200159, 0x99ba4efe],
    ],
    [
      [0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      [0x1cb996fc, 0xbb002be7],
    ],
    [
      [0x13198a2e, 0x03707344],
      [0x243f6a88, 0x85a308d3],
      [0xc4923a9c, 0x483df7a0],
    ],
  ])('key %j counter %j gives %j', (key, ctr, expected) => {
    expect(threefry2x32(key[0]!, key[1]!, ctr[0]!, ctr[1]!)).toEqual(expected);
  });
});

describe('detLog', () => {
  it('matches Math.log to a few ulp over many magnitudes', () => {
    for (const x of [
      1e-300, 3e-200, 1e-10, 0.1, 0.5, 0.7, 1, 1.0000001, 1.41, 2, 10, 1e100, 1.7e308,
    ]) {
      const rel = Math.abs(detLog(x) - Math.log(x)) / Math.max(1e-300, Math.abs(Math.log(x)));
      expect(rel).toBeLessThan(1e-15);
    }
    expect(detLog(1)).toBe(0);
  });
  it('handles subnormals', () => {
    expect(detLog(5e-324)).toBeCloseTo(Math.log(5e-324), 10);
  });
  it('rejects non-positive and non-finite input', () => {
    for (const x of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => detLog(x)).toThrow(/x must be finite and > 0/);
  });
});
