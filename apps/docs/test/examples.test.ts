// Runs every code example of the docs (see collect-examples.ts), so none can rot: each is written
// to apps/docs/.examples/ (so that it resolves the workspace packages as a user's file would) and
// imported. An example passes when it runs to the end without throwing; one marked `no-run: why`
// (browser-only code, vitest-suite definitions) is compiled instead.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import ts from 'typescript';
import { describe, expect, it, vi } from 'vitest';
import { collectExamples } from './collect-examples.js';

const dir = join(import.meta.dirname, '..', '.examples');
mkdirSync(dir, { recursive: true });
const examples = collectExamples();

it('finds the examples of the README, the guides, the site and the TSDoc comments', () => {
  const from = (prefix: string) => examples.filter((e) => e.where.startsWith(prefix)).length;
  expect(from('README.md')).toBeGreaterThan(0);
  for (const pkg of [
    'random-features',
    'feature-maps',
    'performer',
    'backend-webgl',
    'backend-webgpu',
  ]) {
    expect(from(`packages/${pkg}/README.md`), pkg).toBeGreaterThan(0);
  }
  expect(from('docs/guides/')).toBeGreaterThan(5);
  expect(from('apps/docs/site/')).toBeGreaterThan(5);
  expect(from('packages/')).toBeGreaterThan(20);
});

describe.each(examples.map((e, i) => ({ ...e, i })))('$where', ({ code, skip, i, where }) => {
  const run = async () => {
    const file = join(dir, `example-${String(i).padStart(3, '0')}.ts`);
    writeFileSync(file, `// ${where}\n${code}\nexport {};\n`);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    // as a user runs it: without tfjs's test-mode kernel leak check (which miscounts wasm's fused
    // matMul during tfjs-layers training)
    const testMode = tf.env().getBool('IS_TEST');
    tf.env().set('IS_TEST', false);
    try {
      await import(pathToFileURL(file).href);
    } finally {
      tf.env().set('IS_TEST', testMode);
      log.mockRestore();
    }
  };
  if (skip) {
    // cannot run in Node (the reason is recorded in the block's info string): it must at least
    // be valid TypeScript
    it(`compiles (not run here: ${skip})`, () => {
      const { diagnostics } = ts.transpileModule(code, {
        reportDiagnostics: true,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      expect(
        (diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
      ).toEqual([]);
    });
  } else {
    it('runs', run, 120_000);
  }
});
