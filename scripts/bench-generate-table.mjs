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
  `| tfjs, recurrent state | ${r.recurrentTokensPerSecond.toFixed(0)} (prompt pass ${(r.recurrentPromptMs / 1000).toFixed(1)} s) |`,
  `| tfjs, recompute the prefix | ${r.recomputeTokensPerSecond.toFixed(1)} (recurrent: ${r.speedup.toFixed(0)}× faster) |`,
  ...(r.ortOneThread
    ? [
        `| ONNX Runtime, one thread | ${r.ortOneThread.tokensPerSecond.toFixed(0)} (prefill ${r.ortOneThread.prefillMs.toFixed(0)} ms; ${r.ortOneThreadSpeedup.toFixed(1)}× tfjs's recurrent) |`,
        `| ONNX Runtime, two threads | ${r.ortTwoThreads.tokensPerSecond.toFixed(0)} (prefill ${r.ortTwoThreads.prefillMs.toFixed(0)} ms) |`,
      ]
    : []),
  '',
  `Greedy tokens: ${r.firstDivergence === null && r.ortOneThread?.firstDivergence === null ? 'the same on every path' : 'see firstDivergence in the results file'}; other processes during the run: ${r.otherCores === undefined ? 'not recorded' : `${r.otherCores.toFixed(3)} cores`}.`,
].join('\n');
if (process.argv.includes('--write')) writeDocSection('generate-table', text);
else console.log(text);
