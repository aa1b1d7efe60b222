import { describe, expect, it } from 'vitest';
import { createRng } from './rng.js';
import { sampleLogits } from './sample.js';

describe('sampleLogits', () => {
  const logits = Float32Array.of(0.5, 3, -2, 2.9);
  it('is greedy at temperature 0', () => {
    expect(sampleLogits(logits, 0, undefined, createRng(0))).toBe(1);
  });
  it('samples by softmax(logits / T), within topK, reproducibly from the seed', () => {
    const counts = [0, 0, 0, 0];
    const rng = createRng(3);
    for (let i = 0; i < 4000; i++) counts[sampleLogits(logits, 1, undefined, rng)]!++;
    const z = [0.5, 3, -2, 2.9].map(Math.exp);
    const total = z.reduce((a, b) => a + b, 0);
    for (const [i, c] of counts.entries()) {
      expect(Math.abs(c / 4000 - z[i]! / total)).toBeLessThan(0.03);
    }
    for (let i = 0; i < 200; i++) expect([1, 3]).toContain(sampleLogits(logits, 2, 2, rng));
    const draw = (seed: number) => {
      const r = createRng(seed);
      return Array.from({ length: 20 }, () => sampleLogits(logits, 0.7, undefined, r));
    };
    expect(draw(9)).toEqual(draw(9));
  });
});
