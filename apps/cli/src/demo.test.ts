import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
      '--inputs',
      'gaussian',
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
      inputs: 'gaussian',
      given: [
        '--lengths',
        '--heads',
        '--head-dim',
        '--features',
        '--causal',
        '--backend',
        '--seed',
        '--batch',
        '--runs',
        '--scale',
        '--inputs',
      ],
    });
    expect(parseArgs(['--layer', '3'])).toMatchObject({
      inputs: 'text',
      layer: 3,
      heads: 4,
      headDim: 32,
    });
    expect(parseLengths('100, 300')).toEqual([100, 300]);
    expect(parseArgs(['-h']).help).toBe(true);
  });
  it('rejects bad input with a message that names the flag', () => {
    expect(() => parseArgs(['--heads', '0'])).toThrow(
      '--heads needs a positive integer (at most 64), got "0"',
    );
    expect(() => parseArgs(['--lengths', '512..256'])).toThrow(
      '--lengths range must go up, got 512..256',
    );
    expect(() => parseArgs(['--backend', 'webgpu'])).toThrow(
      '--backend must be wasm or cpu, got "webgpu"',
    );
    expect(() => parseArgs(['--scale', '-1'])).toThrow(
      '--scale needs a positive number (at most 1000), got "-1"',
    );
    expect(() => parseArgs(['--frobnicate'])).toThrow('unknown option "--frobnicate" (see --help)');
    expect(() => parseArgs(['--inputs', 'noise'])).toThrow(
      '--inputs must be text or gaussian, got "noise"',
    );
    expect(() => parseArgs(['--layer', '4'])).toThrow('--layer must be 0, 1, 2 or 3, got "4"');
    expect(() => parseArgs(['--heads', '2'])).toThrow(
      '--heads shape Gaussian inputs: add --inputs gaussian',
    );
  });
  // regression: huge or malformed values ended in a RangeError stack trace, a NaN table, seed 0
  // or exact attention at L = 65536; every flag now says its bound
  it.each([
    [['--lengths', '99999999999'], '--lengths must be at most 16384, got 99999999999'],
    [['--lengths', '2**60'], '--lengths needs a positive integer (at most 16384), got "2**60"'],
    [
      ['--lengths', '1..99999999999999999999'],
      '--lengths must be at most 16384, got 99999999999999999999',
    ],
    [
      ['--lengths', Array.from({ length: 17 }, (_, i) => i + 1).join(',')],
      '--lengths may list at most 16 lengths, got 17',
    ],
    [
      ['--inputs', 'gaussian', '--heads', '1e12'],
      '--heads needs a positive integer (at most 64), got "1e12"',
    ],
    [['--inputs', 'gaussian', '--heads', '65'], '--heads must be at most 64, got 65'],
    [['--features', '0x10'], '--features needs a positive integer (at most 8192), got "0x10"'],
    [
      ['--scale', '1e30'],
      "--scale must be at most 1000 (beyond it q·k leaves float32's range), got 1e30",
    ],
    [['--scale', ''], '--scale needs a positive number (at most 1000), got ""'],
    [['--seed', ''], '--seed needs an integer between'],
    [['--seed', '1.5'], '--seed needs an integer between'],
    [
      ['--seed'],
      '--seed needs an integer between -9007199254740991 and 9007199254740991, got nothing',
    ],
    [
      ['--inputs', 'gaussian', '--batch', '64', '--heads', '64', '--lengths', '16384'],
      '--batch × --heads × the longest length × max(--head-dim, --features) = 64 × 64 × 16384 × 256',
    ],
  ])('bounds every flag: %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message);
  });
});

describe('runDemo', () => {
  it('measures error, times and speed-up for each length and reports progress', () => {
    const seen: number[] = [];
    const o = {
      ...DEFAULTS,
      inputs: 'gaussian' as const,
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

describe('runDemo on real attention', () => {
  it('takes q, k, v from the pretrained model on held-out text (windows joined past its context)', async () => {
    const { textInputs } = await import('./text-inputs.js');
    const text = await textInputs(1);
    try {
      const { q, k, v } = text.inputs(1500); // one window of 1024 and one of 476
      expect(q.shape).toEqual([1, 4, 1500, 32]);
      expect(k.shape).toEqual(q.shape);
      expect(v.shape).toEqual(q.shape);
      for (const t of [q, k, v]) t.dispose();
      const o = parseArgs(['--lengths', '64,128', '--features', '64', '--runs', '1']);
      const rows = runDemo(o, () => {}, text.inputs);
      expect(rows.map((r) => r.length)).toEqual([64, 128]);
      for (const r of rows) {
        expect(Number.isFinite(r.relativeError)).toBe(true);
        expect(r.baselineError).toBeGreaterThan(0);
      }
      expect(formatTable(o, rows)).toMatch(
        /4 heads, d = 32, m = 64, real attention: layer 1 of the pretrained fortunes Performer/,
      );
      expect(() => runDemo(o)).toThrow(/text inputs need an InputSource/);
    } finally {
      text.dispose();
    }
  }, 60_000);
});

describe('the demo command (a display process and a measuring child)', () => {
  const run = (args: string[]) => {
    const here = dirname(fileURLToPath(import.meta.url));
    return spawnSync(
      join(here, '..', '..', '..', 'node_modules', '.bin', 'tsx'),
      ['--conditions=@kernel-attention/source', join(here, 'main.ts'), ...args],
      { encoding: 'utf8', env: { ...process.env, KA_DEMO_CHILD: '' } },
    );
  };

  it('draws progress on a log line by line, prints the table and what else used the CPU', () => {
    const r = run(
      '--inputs gaussian --lengths 32,64 --heads 1 --head-dim 8 --features 16 --runs 1'.split(' '),
    );
    expect(r.status).toBe(0);
    const progress = r.stderr.trim().split('\n');
    expect(progress[0]).toMatch(/0\/1 starting the backend/);
    expect(progress.some((l) => /1\/4 FAVOR\+, L=32/.test(l))).toBe(true);
    expect(progress.at(-1)).toMatch(/4\/4 done/);
    expect(r.stdout).toMatch(/FAVOR\+ vs exact softmax attention/);
    expect(r.stdout).toMatch(/^\s+64\s+\d\.\d{4}/m);
    expect(r.stdout).toMatch(
      /other processes during the run: \d\.\d\d cores \(a quiet machine\)|Warning: other processes used \d\.\d\d cores/,
    );
  }, 60_000);

  it('ends a bad flag with its message and exit code 2, nothing else', () => {
    const r = run(['--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('ka-demo: unknown option "--bogus" (see --help)\n');
    expect(r.stdout).toBe('');
  });
});
