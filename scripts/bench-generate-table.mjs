// Renders bench/results/generate-wasm-node.json into docs/performance.md ("Generation").
// Usage: node scripts/bench-generate-table.mjs [--write]
import { readFileSync } from 'node:fs';
import { writeDocSection } from './doc-section.mjs';

const { meta, results: r } = JSON.parse(
  readFileSync(new URL('../bench/results/generate-wasm-node.json', import.meta.url), 'utf8'),
);
const text = [
  `Run ${meta.date.slice(0, 10)}, ${meta.backend}, prompt ${meta.promptLength}, ${meta.newTokens} new tokens:`,
  '',
  '| decoding | new tokens / s |',
  '|---|---|',
  `| recurrent state | ${r.recurrentTokensPerSecond.toFixed(0)} (prompt pass ${(r.recurrentPromptMs / 1000).toFixed(1)} s) |`,
  `| recompute the prefix | ${r.recomputeTokensPerSecond.toFixed(1)} |`,
  `| speed-up | ${r.speedup.toFixed(0)}× |`,
].join('\n');
if (process.argv.includes('--write')) writeDocSection('generate-table', text);
else console.log(text);
