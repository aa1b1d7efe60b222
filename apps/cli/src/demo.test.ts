import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseArgs, parseLengths } from './args.js';
import { formatTable, runDemo } from './demo.js';

describe('demo CLI arguments', () => {
  it('parses every flag', () => {
    const o = parseArgs([
      '--lengths',
      '64..256',
      '--heads',
      '2',
      '--head-dim',
      '16',
      '--features',
      '32',
      '--causal',
      '--backend',
      'cpu',
      '--seed',
      '7',
      '--batch',
      '3',
      '--runs',
      '1',
      '--scale',
      '0.25',
    ]);
    expect(o).toEqual({
      ...DEFAULTS,
      lengths: [64, 128, 256],
      heads: 2,
      headDim: 16,
      features: 32,
      causal: true,
      backend: 'cpu',
      seed: 7,
      batch: 3,
      runs: 1,
      scale: 0.25,
    });
    expect(parseLengths('100, 300')).toEqual([100, 300]);
    expect(parseArgs(['-h']).help).toBe(true);
  });
  it('rejects bad input with a message that names the flag', () => {
    expect(() => parseArgs(['--heads', '0'])).toThrow('--heads needs a positive integer, got "0"');
    expect(() => parseArgs(['--lengths', '512..256'])).toThrow(
      '--lengths range must go up, got 512..256',
    );
    expect(() => parseArgs(['--backend', 'webgpu'])).toThrow(
      '--backend must be wasm or cpu, got "webgpu"',
    );
    expect(() => parseArgs(['--scale', '-1'])).toThrow('--scale needs a positive number, got "-1"');
    expect(() => parseArgs(['--frobnicate'])).toThrow('unknown option "--frobnicate" (see --help)');
  });
});

describe('runDemo', () => {
  it('measures error, times and speed-up for each length and reports progress', () => {
    const seen: number[] = [];
    const o = {
      ...DEFAULTS,
      lengths: [16, 32],
      heads: 2,
      headDim: 8,
      features: 64,
      runs: 1,
      causal: true,
    };
    const rows = runDemo(o, (done) => seen.push(done));
    expect(rows.map((r) => r.length)).toEqual([16, 32]);
    for (const r of rows) {
      expect(r.relativeError).toBeGreaterThan(0);
      expect(r.relativeError).toBeLessThan(0.5);
      expect(r.baselineError).toBeGreaterThan(0);
      expect(r.exactMs).toBeGreaterThan(0);
      expect(r.speedup).toBeCloseTo(r.exactMs / r.favorMs, 10);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(formatTable(o, rows)).toMatch(/causal, backend wasm, batch 1, 2 heads, d = 8, m = 64/);
  });
});
