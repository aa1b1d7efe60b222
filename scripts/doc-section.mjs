// Replaces the text between <!-- NAME:start --> and <!-- NAME:end --> in docs/performance.md.
import { readFileSync, writeFileSync } from 'node:fs';

export function writeDocSection(name, text) {
  const doc = new URL('../docs/performance.md', import.meta.url);
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const md = readFileSync(doc, 'utf8');
  const i = md.indexOf(start);
  const j = md.indexOf(end);
  if (i < 0 || j < i) throw new Error(`docs/performance.md lacks the ${name} markers`);
  writeFileSync(doc, `${md.slice(0, i + start.length)}\n\n${text}\n\n${md.slice(j)}`);
}
