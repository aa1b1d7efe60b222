/**
 * `pnpm bench [-- flags]`: every section of the benchmark, one child process each, each given
 * the same flags (`--quick` for a short run, `--long` for the sections that have one) — a pnpm
 * script chain would pass them to its last command only. `--only main,ort` runs some sections.
 * Each section writes its own bench/results/*.json; this prints which ran and which failed.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const SECTIONS: Record<string, { file: string; env?: Record<string, string> }> = {
  main: { file: 'main.ts' },
  rpe: { file: 'rpe.ts' },
  combiner: { file: 'combiner.ts' },
  generate: { file: 'generate.ts' },
  accuracy: { file: 'accuracy.ts' },
  ort: { file: 'ort.ts' },
  pytorch: { file: 'pytorch.ts' },
  profile: { file: 'profile.ts' },
  webgpu: {
    file: 'webgpu-node.ts',
    env: {
      LD_LIBRARY_PATH: ['/usr/lib/chromium', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    },
  },
  browser: { file: 'browser.ts' },
};

const args = process.argv.slice(2).filter((a) => a !== '--');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? '').split(',') : null;
const flags = onlyAt >= 0 ? args.filter((_, i) => i !== onlyAt && i !== onlyAt + 1) : args;
const unknown = (only ?? []).filter((s) => !(s in SECTIONS));
if (unknown.length > 0) {
  console.error(
    `bench: unknown section(s) ${unknown.join(', ')} (known: ${Object.keys(SECTIONS).join(', ')})`,
  );
  process.exit(2);
}
const failed: string[] = [];
/** Sections that found a prerequisite missing (they exit 3 and say what to install). */
const skipped: string[] = [];
for (const [name, section] of Object.entries(SECTIONS)) {
  if (only && !only.includes(name)) continue;
  console.error(`\n── bench ${name} ${flags.join(' ')}`);
  const r = spawnSync(process.execPath, [...process.execArgv, join(here, section.file), ...flags], {
    stdio: 'inherit',
    env: { ...process.env, ...section.env },
  });
  if (r.status === 3) skipped.push(name);
  else if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
}
console.error(
  failed.length === 0
    ? skipped.length === 0
      ? '\nbench: every section ran'
      : `\nbench: every other section ran; skipped (a prerequisite is missing, see above): ${skipped.join(', ')}`
    : `\nbench: failed: ${failed.join(', ')}${skipped.length > 0 ? `; skipped: ${skipped.join(', ')}` : ''}`,
);
process.exit(failed.length === 0 ? 0 : 1);
