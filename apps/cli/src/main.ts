#!/usr/bin/env node
import * as tf from '@tensorflow/tfjs-core';
import { HELP, parseArgs } from './args.js';
import { formatTable, runDemo } from './demo.js';
import { textInputs } from './text-inputs.js';

async function main(): Promise<number> {
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`ka-demo: ${(e as Error).message}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  tf.env().set('IS_TEST', true); // no "install tfjs-node" banner: tfjs-node cannot install here
  if (opts.backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend(opts.backend))) {
    process.stderr.write(`ka-demo: the ${opts.backend} backend could not start\n`);
    return 1;
  }
  await tf.ready();
  const tty = process.stderr.isTTY;
  const started = performance.now();
  const text = opts.inputs === 'text' ? await textInputs(opts.layer) : undefined;
  const rows = runDemo(
    opts,
    (done, total, what) => {
      const width = 24;
      const filled = Math.round((width * done) / total);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${what} (${((performance.now() - started) / 1000).toFixed(1)} s)`;
      process.stderr.write(tty ? `\r${bar.padEnd(78)}` : `${bar}\n`);
    },
    text?.inputs,
  );
  text?.dispose();
  if (tty) process.stderr.write('\n');
  process.stdout.write(`${formatTable(opts, rows)}\n`);
  const bad = rows.filter((r) => ![r.relativeError, r.baselineError].every(Number.isFinite));
  if (bad.length > 0) {
    process.stderr.write(
      `ka-demo: non-finite errors at L = ${bad.map((r) => r.length).join(', ')}; please report this with the command line\n`,
    );
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    // a message, not a stack trace (KA_DEBUG=1 prints the stack)
    const detail =
      e instanceof Error ? (process.env.KA_DEBUG ? (e.stack ?? e.message) : e.message) : String(e);
    process.stderr.write(`ka-demo: ${detail}\n`);
    process.exit(1);
  },
);
