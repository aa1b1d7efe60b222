// Renders bench/results/webgpu-node.json and bench/results/browser.json (fused against composite
// per GPU backend) as the markdown tables of docs/performance.md.
// Usage: node scripts/bench-gpu-tables.mjs [--write]  (--write replaces the tables between the markers)
import { readFileSync } from 'node:fs';
import { writeDocSection } from './doc-section.mjs';

const read = (name) =>
  JSON.parse(readFileSync(new URL(`../bench/results/${name}`, import.meta.url), 'utf8'));
const ms = (v) => (v === null || v === undefined ? '–' : v.toFixed(0));
const mb = (v) => (v === undefined ? '' : ` (${(v / 1e6).toFixed(1)} MB)`);

function table(title, results) {
  const out = [
    `**${title}**`,
    '',
    '| op | L | composite ms | fused ms | speed-up |',
    '|---|---|---|---|---|',
  ];
  for (const r of results) {
    const speedup = r.speedup === null ? '–' : `${r.speedup.toFixed(2)}×`;
    out.push(
      `| ${r.op} | ${r.length} | ${ms(r.compositeMs)}${mb(r.compositePeakBytes)} | ${ms(r.fusedMs)}${mb(r.fusedPeakBytes)} | ${speedup} |`,
    );
  }
  return out.join('\n');
}

const node = read('webgpu-node.json');
const browser = read('browser.json');
const parts = [
  `Runs of ${node.meta.date.slice(0, 10)} (Node) and ${browser.meta.date.slice(0, 10)} (${browser.meta.browser}); medians of 3; peak bytes of the call (tf.profile) in parentheses for the feature maps.`,
  '',
  table('WebGPU in Node (Dawn over SwiftShader)', node.results),
];
for (const section of browser.backends) {
  parts.push(
    '',
    section.error
      ? `**${section.backend}**: failed — ${section.error.split('\n')[0]}`
      : table(`${section.backend} in headless Chromium`, section.results),
  );
  if (section.pool) {
    parts.push(
      '',
      `**${section.backend} in headless Chromium: the page alone against the page + one Web Worker (createAttentionPool)**`,
      '',
      '| op | L | page alone ms | page + worker ms | speed-up |',
      '|---|---|---|---|---|',
      ...section.pool.map(
        (r) =>
          `| ${r.op} | ${r.length} | ${ms(r.oneThreadMs)} | ${ms(r.twoThreadsMs)} | ${r.speedup.toFixed(2)}× |`,
      ),
    );
  }
}
const text = parts.join('\n');
if (process.argv.includes('--write')) {
  writeDocSection('gpu-tables', text);
} else {
  console.log(text);
}
