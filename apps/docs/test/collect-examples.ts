/**
 * Every code example of the docs, collected for the examples test: the ```ts blocks of the READMEs
 * (the repository's and every package's), of docs/guides and of the site's own pages, and the @example blocks of the TSDoc comments of
 * every package (which the API reference shows). A block whose info string says `no-run` needs a
 * browser (WebGPU, WebGL registration); the e2e tests cover that path through the playground.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface Example {
  /** Where it comes from: file and the block's line. */
  where: string;
  code: string;
  /** Why it does not run here, or null. */
  skip: string | null;
}

const root = join(import.meta.dirname, '..', '..', '..');

function walk(dir: string, keep: (path: string) => boolean): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'api' || name.startsWith('.')) return [];
    if (statSync(path).isDirectory()) return walk(path, keep);
    return keep(path) ? [path] : [];
  });
}

/** `no-run: why` in the info string → why (a bare no-run: needs a browser). */
function skipReason(info: string): string | null {
  const m = /no-run(?::\s*(.*))?/.exec(info);
  if (!m) return null;
  return m[1]?.trim() || 'needs a browser (WebGPU/WebGL registration); the e2e tests cover it';
}

function markdownBlocks(file: string): Example[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|typescript)\b(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    out.push({
      where: `${relative(root, file)}:${start + 1}`,
      code: body.join('\n'),
      skip: skipReason(open[2]!),
    });
  }
  return out;
}

function tsdocBlocks(file: string): Example[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\* @example\s*$/.test(lines[i]!)) continue;
    const fence = lines[i + 1] ?? '';
    const open = /^\s*\* ```(ts|typescript)\b(.*)$/.exec(fence);
    if (!open) continue;
    const start = i + 1;
    const body: string[] = [];
    for (i += 2; i < lines.length && !/^\s*\* ```/.test(lines[i]!); i++) {
      body.push(lines[i]!.replace(/^\s*\* ?/, ''));
    }
    out.push({
      where: `${relative(root, file)}:${start + 1}`,
      code: body.join('\n'),
      skip: skipReason(open[2]!),
    });
  }
  return out;
}

export function collectExamples(): Example[] {
  const markdown = [
    join(root, 'README.md'),
    ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'README.md')),
    ...walk(join(root, 'docs', 'guides'), (p) => p.endsWith('.md')),
    ...walk(join(root, 'apps', 'docs', 'site'), (p) => p.endsWith('.md')),
  ];
  const sources = walk(
    join(root, 'packages'),
    (p) => /\/src\/.*\.ts$/.test(p) && !p.endsWith('.test.ts'),
  );
  return [...markdown.flatMap(markdownBlocks), ...sources.flatMap(tsdocBlocks)];
}
