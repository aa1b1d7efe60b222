// Renders bench/results/ort-node.json into docs/performance.md. Usage: node scripts/bench-ort-table.mjs [--write]
import { readFileSync } from 'node:fs';
import { writeDocSection } from './doc-section.mjs';

const { meta, results, targets } = JSON.parse(
  readFileSync(new URL('../bench/results/ort-node.json', import.meta.url), 'utf8'),
);
const rows = results.map(
  (r) =>
    `| ${r.length} | ${r.causal ? 'causal' : 'bidirectional'} | ${r.ortMs.toFixed(0)} | ${r.favorMs.toFixed(0)} (${r.ratio.toFixed(2)}×) | ${r.favorTwoThreadsMs?.toFixed(0) ?? '–'} (${r.ratioTwoThreads?.toFixed(2) ?? '–'}×) | ${r.exactMs === undefined ? '–' : `${r.exactMs.toFixed(0)} (${r.exactRatio.toFixed(2)}×)`} | ${r.ortFavorMs == null ? '–' : `${r.ortFavorMs.toFixed(0)} (${r.ortFavorRatio.toFixed(3)}×)`} | ${r.fusedExactMs == null ? '–' : `${r.fusedExactMs.toFixed(0)} (ours ${r.exactOverFused.toFixed(2)}×)`} | ${r.floorMs == null ? '–' : `${r.floorMs.toFixed(0)} (FAVOR+ ${r.favorOverFloor.toFixed(2)}×)`} | ${r.otherCores == null ? '–' : r.otherCores.toFixed(2)} |`,
);
const goals = targets.map(
  (t) =>
    `| ${t.name} | ${t.value ?? 'not measured'} | ${t.target} | ${t.met ? 'met' : '**not met**'} |`,
);
const text = [
  `Run ${meta.date.slice(0, 10)}: ${meta.ort} against ${meta.ours}; ${meta.note}.`,
  '',
  '| L | mode | ORT exact ms | FAVOR+ one thread ms (/ ORT) | FAVOR+ two threads ms (/ ORT) | our exact, one thread ms (/ ORT) | FAVOR+ on ORT ms (/ ORT exact) | ORT fused exact (MultiHeadAttention) ms | the four products of FAVOR+ alone ms | other processes (cores) |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows,
  '',
  '| target | measured | goal | |',
  '|---|---|---|---|',
  ...goals,
].join('\n');
if (process.argv.includes('--write')) writeDocSection('ort-table', text);
else console.log(text);
