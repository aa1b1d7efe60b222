// Renders bench/results/rpe-wasm-node.json and bench/results/combiner-wasm-node.json as the
// markdown tables of docs/performance.md ("Mechanisms").
// Usage: node scripts/bench-mechanism-tables.mjs [--write]  (--write replaces the tables between the markers)
import { existsSync, readFileSync } from 'node:fs';
import { writeDocSection } from './doc-section.mjs';

const read = (name) => {
  const url = new URL(`../bench/results/${name}`, import.meta.url);
  return existsSync(url) ? JSON.parse(readFileSync(url, 'utf8')) : null;
};
const ms = (v) => (v === null || v === undefined ? '–' : v.toFixed(0));
const parts = [];

const rpe = read('rpe-wasm-node.json');
if (rpe) {
  const { heads, dim, features, valueDim } = rpe.meta.shape;
  parts.push(
    `**Relative positions** (\`pnpm bench:rpe\`, ${rpe.meta.date.slice(0, 10)}, ${rpe.meta.backend}; ${heads} heads, d = ${dim}, m = ${features}, dv = ${valueDim}, bidirectional; ms, median):`,
    '',
    '| L | rpeFavorAttention, FFT | rpeFavorAttention, dense Toeplitz | exact softmax with bias |',
    '|---|---|---|---|',
  );
  const lengths = [...new Set(rpe.results.map((r) => r.length))].sort((a, b) => a - b);
  for (const L of lengths) {
    const cell = (op) => {
      const r = rpe.results.find((x) => x.op === op && x.length === L);
      return r?.skipped ? `– (${r.skipped})` : ms(r?.medianMs);
    };
    parts.push(
      `| ${L} | ${cell('rpe-fft')} | ${cell('rpe-dense-toeplitz')} | ${cell('exact-softmax-with-bias')} |`,
    );
  }
  parts.push('');
}

const combiner = read('combiner-wasm-node.json');
if (combiner) {
  const { heads, dim } = combiner.meta.shape;
  parts.push(
    `**Combiner** (\`pnpm bench:combiner\`, ${combiner.meta.date.slice(0, 10)}, ${combiner.meta.backend}; ${heads} heads, d = ${dim}, s = ⌈√L⌉, max pooling): ms (× per doubling of L) and peak tensor MiB:`,
    '',
  );
  for (const causal of [false, true]) {
    parts.push(
      `${causal ? 'Causal' : 'Bidirectional'}:`,
      '',
      '| L | fixed | axial | logsparse | exact |',
      '|---|---|---|---|---|',
    );
    const lengths = [...new Set(combiner.results.map((r) => r.length))].sort((a, b) => a - b);
    for (const L of lengths) {
      const cell = (op) => {
        const r = combiner.results.find(
          (x) => x.op === op && x.length === L && x.causal === causal,
        );
        if (!r) return '–';
        const growth = r.timeGrowthPerDoubling === null ? '' : ` (×${r.timeGrowthPerDoubling})`;
        return `${ms(r.medianMs)}${growth}, ${(r.peakTensorBytes / 2 ** 20).toFixed(0)} MiB`;
      };
      parts.push(
        `| ${L} | ${cell('fixed')} | ${cell('axial')} | ${cell('logsparse')} | ${cell('exact')} |`,
      );
    }
    parts.push('');
  }
}

const text = parts.join('\n').trim();
if (process.argv.includes('--write')) {
  writeDocSection('mechanism-tables', text);
} else {
  console.log(text);
}
