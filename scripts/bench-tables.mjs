// Renders bench/results/wasm-node.json as the markdown tables of docs/performance.md.
// Usage: node scripts/bench-tables.mjs [results.json]  (prints to stdout)
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? new URL('../bench/results/wasm-node.json', import.meta.url);
const { meta, results, targets } = JSON.parse(readFileSync(file, 'utf8'));
const mib = (b) => (b === null || b === undefined ? '–' : (b / 2 ** 20).toFixed(0));
const ops = ['favor-bidirectional', 'favor-causal', 'exact-bidirectional', 'exact-causal'];
const lengths = [...new Set(results.map((r) => r.length))].sort((a, b) => a - b);
const out = [];
out.push(
  `Run ${meta.date.slice(0, 10)}, ${meta.cpu} (${meta.cores} cores), Node ${meta.node}, tfjs ${meta.tfjs}; ${meta.inputs}.`,
  '',
);
out.push(`| L | ${ops.map((o) => `${o} ms (peak RSS MiB)`).join(' | ')} |`);
out.push(`|---|${ops.map(() => '---').join('|')}|`);
for (const L of lengths) {
  const cells = ops.map((op) => {
    const r = results.find((x) => x.op === op && x.length === L);
    return r ? `${r.medianMs.toFixed(1)} (${mib(r.peakRssBytes)})` : '–';
  });
  out.push(`| ${L} | ${cells.join(' | ')} |`);
}
out.push('', '| target | measured | goal | |', '|---|---|---|---|');
for (const t of targets)
  out.push(`| ${t.name} | ${t.value} | ${t.target} | ${t.met ? 'met' : '**not met**'} |`);
console.log(out.join('\n'));
