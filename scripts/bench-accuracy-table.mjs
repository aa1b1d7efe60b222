// Renders bench/results/accuracy-wasm-node.json into docs/performance.md (section accuracy-table).
// Usage: node scripts/bench-accuracy-table.mjs [--write]
import { readFileSync } from 'node:fs';
import { writeDocSection } from './doc-section.mjs';

const { meta, baselines, results, targets } = JSON.parse(
  readFileSync(new URL('../bench/results/accuracy-wasm-node.json', import.meta.url), 'utf8'),
);
const maps = [...new Set(results.map((r) => r.map))];
const ms = [...new Set(results.map((r) => r.m))].sort((a, b) => a - b);
const f = (x) => (x === undefined || x === null ? '–' : x.toFixed(3));
const find = (map, orthogonal, d, sigma, m) =>
  results.find(
    (r) =>
      r.map === map && r.orthogonal === orthogonal && r.d === d && r.sigma === sigma && r.m === m,
  )?.error;
const base = (d, sigma) => baselines.find((b) => b.d === d && b.sigma === sigma)?.error;

const main = (orthogonal) => [
  `| map (${orthogonal ? 'orthogonal' : 'IID'}) | ${ms.map((m) => `m = ${m}`).join(' | ')} |`,
  `|---|${ms.map(() => '---').join('|')}|`,
  ...maps.map(
    (map) => `| ${map} | ${ms.map((m) => f(find(map, orthogonal, 64, 0.5, m))).join(' | ')} |`,
  ),
  `| mean(v) baseline | ${ms.map(() => f(base(64, 0.5))).join(' | ')} |`,
];
const combos = [16, 64].flatMap((d) => [0.25, 0.5, 1].map((sigma) => [d, sigma]));
const grid = [
  `| map, m = 256, orthogonal | ${combos.map(([d, s]) => `d = ${d}, σ = ${s}`).join(' | ')} |`,
  `|---|${combos.map(() => '---').join('|')}|`,
  ...maps.map(
    (map) => `| ${map} | ${combos.map(([d, s]) => f(find(map, true, d, s, 256))).join(' | ')} |`,
  ),
  `| mean(v) baseline | ${combos.map(([d, s]) => f(base(d, s))).join(' | ')} |`,
];
const goals = [
  '| target | measured | goal | |',
  '|---|---|---|---|',
  ...targets.map(
    (t) => `| ${t.name} | ${f(t.value)} | ${t.target} | ${t.met ? 'met' : '**not met**'} |`,
  ),
];
const text = [
  `Run ${meta.date.slice(0, 10)} (${meta.backend}): ${meta.setup}.`,
  '',
  '**d = 64, σ = 0.5** (relative error of the output; lower is better):',
  '',
  ...main(true),
  '',
  ...main(false),
  '',
  '**Every setting at m = 256:**',
  '',
  ...grid,
  '',
  ...goals,
].join('\n');
if (process.argv.includes('--write')) writeDocSection('accuracy-table', text);
else console.log(text);
