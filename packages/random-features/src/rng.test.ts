import { describe, expect, it } from 'vitest';
import { createRng } from './rng.js';

describe('createRng', () => {
  it('same seed gives bit-identical streams; different seeds differ', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xa = Array.from({ length: 100 }, () => a.normal());
    const xb = Array.from({ length: 100 }, () => b.normal());
    const xc = Array.from({ length: 100 }, () => c.normal());
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
  });

  it('pins the first words of seed 0 (guards cross-engine reproducibility)', () => {
    // Any change of these numbers changes every projection users have drawn: a breaking change.
    // The block function itself is checked against published vectors in threefry.test.ts;
    // these pins catch any change in how seeds, counters and normals are derived from it.
    const r = createRng(0);
    expect(Array.from({ length: 4 }, () => r.nextUint32())).toEqual([
      1752610173, 3613464455, 2337664397, 3779037073,
    ]);
    const z = createRng(0);
    expect([z.normal(), z.normal(), z.normal()]).toEqual([
      -2.2715285199849924, 1.0940239211053722, 2.1543998247110823,
    ]);
  });

  it('uniform is in [0, 1) with mean 1/2 and variance 1/12', () => {
    const r = createRng(1);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      lo = Math.min(lo, u);
      hi = Math.max(hi, u);
      s += u;
      s2 += u * u;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    const mean = s / n;
    // standard error of the mean is sqrt(1/12/n) ≈ 6.5e-4; allow 5 standard errors
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(2e-3);
  });

  it('normal has mean 0, variance 1, kurtosis 3 (5 standard errors)', () => {
    const r = createRng(7);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    let s4 = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
      s4 += z ** 4;
    }
    expect(Math.abs(s / n)).toBeLessThan(5 / Math.sqrt(n)); // se of mean = 1/sqrt(n)
    expect(Math.abs(s2 / n - 1)).toBeLessThan(5 * Math.sqrt(2 / n)); // se of var = sqrt(2/n)
    expect(Math.abs(s4 / n - 3)).toBeLessThan(5 * Math.sqrt(96 / n)); // se of 4th moment = sqrt(96/n)
  });

  it('split streams are independent of each other and of the parent', () => {
    const parent = createRng(5);
    const c1 = parent.split();
    const c2 = parent.split();
    const x1 = Array.from({ length: 20 }, () => c1.nextUint32());
    const x2 = Array.from({ length: 20 }, () => c2.nextUint32());
    const xp = Array.from({ length: 20 }, () => parent.nextUint32());
    expect(x1).not.toEqual(x2);
    expect(x1).not.toEqual(xp);
    // splitting is deterministic
    const again = createRng(5);
    expect(Array.from({ length: 20 }, () => again.split().nextUint32()).slice(0, 1)).toEqual([
      x1[0],
    ]);
  });

  it('fold(n) depends only on (key, n), not on the stream position', () => {
    const a = createRng(9);
    const before = a.fold(3).nextUint32();
    for (let i = 0; i < 10; i++) a.nextUint32();
    expect(a.fold(3).nextUint32()).toBe(before);
    expect(a.fold(4).nextUint32()).not.toBe(before);
  });

  it.each([Number.NaN, 1.5, Number.POSITIVE_INFINITY, 2 ** 60])(
    'rejects seed %s naming the argument',
    (seed) => {
      expect(() => createRng(seed)).toThrow(/createRng: seed must be a safe integer, got/);
    },
  );

  it('accepts negative seeds deterministically', () => {
    expect(createRng(-1).nextUint32()).toBe(createRng(-1).nextUint32());
    expect(createRng(-1).nextUint32()).not.toBe(createRng(1).nextUint32());
  });
});
