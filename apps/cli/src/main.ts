#!/usr/bin/env node
// The demo runs in two processes: this one parses the flags and draws the progress (a line that
// keeps ticking while a long exact-attention call runs), and a child process that measures
// (nothing else runs on its thread while it times, and its own CPU is told apart from other
// processes' so that a busy machine is reported).
import { fork } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { type DemoOptions, HELP, parseArgs } from './args.js';
import { watchOtherCpu } from './cpu.js';
import { type DemoRow, formatTable, runDemo } from './demo.js';
import { textInputs } from './text-inputs.js';

/** Other processes' mean CPU (cores) above which the timings are flagged as unreliable. */
const BUSY_CORES = 0.2;

type ChildMessage =
  | { type: 'progress'; done: number; total: number; what: string }
  | { type: 'result'; rows: DemoRow[]; otherCores: number | null }
  | { type: 'error'; message: string };

/** The measuring child: starts the backend, runs the demo, reports to the parent. */
async function child(opts: DemoOptions): Promise<void> {
  const send = (m: ChildMessage) =>
    new Promise<void>((resolve) => process.send!(m, undefined, undefined, () => resolve()));
  try {
    tf.env().set('IS_TEST', true); // no "install tfjs-node" banner: tfjs-node cannot install here
    if (opts.backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
    else await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend(opts.backend))) {
      throw new Error(`the ${opts.backend} backend could not start`);
    }
    await tf.ready();
    const text = opts.inputs === 'text' ? await textInputs(opts.layer) : undefined;
    const cpu = watchOtherCpu();
    const rows = runDemo(
      opts,
      (done, total, what) => void send({ type: 'progress', done, total, what }),
      text?.inputs,
    );
    text?.dispose();
    await send({ type: 'result', rows, otherCores: cpu.stop().otherCores });
  } catch (e) {
    const detail =
      e instanceof Error ? (process.env.KA_DEBUG ? (e.stack ?? e.message) : e.message) : String(e);
    await send({ type: 'error', message: detail });
  }
}

/** The parent: runs the child, draws progress every half second, prints the table. */
function parent(opts: DemoOptions): Promise<number> {
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(0);
  let state = { done: 0, total: 1, what: 'starting the backend and loading the inputs' };
  let lastLine = 0;
  const draw = (force: boolean) => {
    const width = 24;
    const filled = Math.round((width * state.done) / state.total);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${state.done}/${state.total} ${state.what} (${seconds()} s)`;
    if (tty) process.stderr.write(`\r${bar.padEnd(78)}`);
    else if (force || performance.now() - lastLine > 10_000) {
      process.stderr.write(`${bar}\n`); // a log gets a line per step, and one every 10 s between
      lastLine = performance.now();
    }
  };
  const ticker = setInterval(() => draw(false), tty ? 500 : 1000);
  draw(true);
  return new Promise((resolve) => {
    const proc = fork(process.argv[1]!, process.argv.slice(2), {
      execArgv: process.execArgv,
      env: { ...process.env, KA_DEMO_CHILD: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let code = 1;
    proc.on('message', (m: ChildMessage) => {
      if (m.type === 'progress') {
        state = m;
        draw(true);
      } else if (m.type === 'error') {
        clearInterval(ticker);
        if (tty) process.stderr.write('\n');
        process.stderr.write(`ka-demo: ${m.message}\n`);
        code = 1;
      } else {
        clearInterval(ticker);
        if (tty) process.stderr.write('\n');
        code = report(opts, m.rows, m.otherCores);
      }
    });
    proc.on('exit', (exitCode, signal) => {
      clearInterval(ticker);
      if (code === 1 && exitCode !== 0 && signal) {
        process.stderr.write(`ka-demo: the measuring process ended (${signal})\n`);
      }
      resolve(code);
    });
  });
}

function report(opts: DemoOptions, rows: DemoRow[], otherCores: number | null): number {
  process.stdout.write(`${formatTable(opts, rows)}\n`);
  if (otherCores !== null) {
    process.stdout.write(
      otherCores > BUSY_CORES
        ? `\nWarning: other processes used ${otherCores.toFixed(2)} cores on average during the run, so the times above are slower than this machine's (rerun when it is quiet; the errors are unaffected).\n`
        : `other processes during the run: ${otherCores.toFixed(2)} cores (a quiet machine)\n`,
    );
  }
  const bad = rows.filter((r) => ![r.relativeError, r.baselineError].every(Number.isFinite));
  if (bad.length > 0) {
    process.stderr.write(
      `ka-demo: non-finite errors at L = ${bad.map((r) => r.length).join(', ')}; please report this with the command line\n`,
    );
    return 1;
  }
  return 0;
}

async function main(): Promise<number> {
  let opts: DemoOptions;
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
  if (process.env.KA_DEMO_CHILD === '1' && process.send) {
    await child(opts);
    return 0;
  }
  return parent(opts);
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
