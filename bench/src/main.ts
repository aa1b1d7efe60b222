/**
 * `pnpm bench`: FAVOR+ bidirectional, FAVOR+ causal and exact softmax attention on the wasm
 * backend in Node, batch 1, 8 heads, d = 64, m = 256, L = 1024 … 16384 (and 65536 for FAVOR+).
 * Each configuration runs in its own Node process (the wasm heap only grows, so one process per
 * configuration keeps measurements independent): median wall time over several runs, peak tensor
 * memory (tf.profile) and the process's peak RSS (VmHWM). Writes
 * bench/results/wasm-node.json, which the docs plot, and checks the targets.
 * This is a benchmark, not a test: nothing here fails a build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { watchOtherCpu } from '@kernel-attention/cli/cpu';
import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { gaussian } from './timing.js';
import '@tensorflow/tfjs-backend-wasm';

type Op = 'favor-bidirectional' | 'favor-causal' | 'exact-bidirectional' | 'exact-causal';
interface Result {
  op: Op;
  length: number;
  medianMs: number;
  runs: number;
  timesMs: number[];
  /** Peak bytes of live tensors during the call (null where not profiled, see measure). */
  peakTensorBytes: number | null;
  /** Peak resident set size of the process that ran only this configuration (VmHWM). */
  peakRssBytes: number;
  /** Other processes' mean CPU (cores) while this configuration was timed; null without /proc. */
  otherCores: number | null;
}

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

const args = new Set(process.argv.slice(2));

const quick = args.has('--quick');
const H = 8;
const d = 64;
const m = 256;
const lengths = quick ? [1024, 4096] : [1024, 2048, 4096, 8192, 16384];
const favorOnly = quick ? [] : [65536];

function runsFor(op: Op, L: number): number {
  if (op.startsWith('exact') && L >= 8192) return L >= 16384 ? 1 : 2;
  if (L >= 65536) return 2;
  return L >= 16384 ? 3 : 5;
}

async function measure(
  op: Op,
  L: number,
  featureMap: ReturnType<typeof softmaxKernelFeatures>,
): Promise<Result> {
  const q = gaussian([1, H, L, d], 1, 0.5);
  const k = gaussian([1, H, L, d], 2, 0.5);
  const v = gaussian([1, H, L, d], 3, 1);
  const call = () => {
    switch (op) {
      case 'favor-bidirectional':
        return favorAttention(q, k, v, { featureMap });
      case 'favor-causal':
        return favorAttention(q, k, v, { featureMap, causal: true });
      case 'exact-bidirectional':
        return softmaxAttention(q, k, v);
      case 'exact-causal':
        return softmaxAttention(q, k, v, { causal: true });
    }
  };
  const runs = runsFor(op, L);
  // warm-up, and peak tensor memory from tf.profile where affordable: the profiler records and
  // checks every kernel's output, which for the ~100k kernels of causal L = 65536 exhausts memory
  let peakTensorBytes: number | null = null;
  if (L <= 16384) {
    const profile = await tf.profile(() => call());
    tf.dispose(profile.result as tf.Tensor);
    peakTensorBytes = profile.peakBytes;
  } else {
    call().dispose();
  }
  const times: number[] = [];
  const cpu = watchOtherCpu();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const out = call();
    out.dataSync();
    times.push(performance.now() - t0);
    out.dispose();
  }
  const { otherCores } = cpu.stop();
  tf.dispose([q, k, v]);
  const sorted = [...times].sort((a, b) => a - b);
  return {
    op,
    length: L,
    medianMs: sorted[Math.floor(sorted.length / 2)]!,
    runs,
    timesMs: times.map((t) => Math.round(t * 10) / 10),
    peakTensorBytes,
    peakRssBytes: peakRss(),
    otherCores: otherCores === null ? null : Math.round(otherCores * 1000) / 1000,
  };
}

/** Child mode: `--one <op> <L>` measures one configuration and prints it as JSON. */
async function one(op: Op, L: number) {
  tf.env().set('IS_TEST', true);
  await tf.setBackend('wasm');
  await tf.ready();
  const featureMap = softmaxKernelFeatures(d, m, { seed: 0 });
  console.log(JSON.stringify(await measure(op, L, featureMap)));
}

function runChild(op: Op, L: number): Result {
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, script, '--one', op, String(L)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{')) {
    throw new Error(
      `bench child for ${op} L=${L} failed (status ${child.status}): ${child.stderr.slice(-400)}`,
    );
  }
  return JSON.parse(line) as Result;
}

const resultsFile = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'results',
  quick ? 'wasm-node.quick.json' : 'wasm-node.json',
);

/** Targets of the foundation issue, evaluated on what has been measured so far. */
function evaluateTargets(results: Result[]) {
  const t = (op: Op, L: number) =>
    results.find((r) => r.op === op && r.length === L)?.medianMs ?? Number.NaN;
  return [
    {
      name: 'causal / bidirectional FAVOR+ at L=4096',
      value: t('favor-causal', 4096) / t('favor-bidirectional', 4096),
      target: '<= 1.5',
    },
    {
      name: 'FAVOR+ bidirectional time(16384)/time(4096)',
      value: t('favor-bidirectional', 16384) / t('favor-bidirectional', 4096),
      target: '<= 4.5',
    },
    {
      name: 'FAVOR+ causal time(16384)/time(4096)',
      value: t('favor-causal', 16384) / t('favor-causal', 4096),
      target: '<= 4.5',
    },
    ...lengths.map((L) => ({
      name: `FAVOR+ bidirectional / exact at L=${L}`,
      value: t('favor-bidirectional', L) / t('exact-bidirectional', L),
      target: '< 1',
    })),
    {
      name: 'FAVOR+ causal at L=65536 runs (median ms)',
      value: t('favor-causal', 65536),
      target: 'finite',
    },
  ].map((x) => ({
    ...x,
    value: Math.round(x.value * 1000) / 1000,
    met:
      x.target === 'finite'
        ? Number.isFinite(x.value)
        : x.target.startsWith('<=')
          ? x.value <= Number(x.target.slice(3))
          : x.value < Number(x.target.slice(2)),
  }));
}

/** Writes the results file (after every configuration, so an interrupted run keeps what it measured). */
function writeResults(results: Result[]) {
  const out = {
    meta: {
      date: new Date().toISOString(),
      backend: 'wasm',
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      tfjs: tf.version_core,
      isolation: 'one Node process per configuration',
      shape: { batch: 1, heads: H, headDim: d, features: m },
      inputs: 'q, k ~ N(0, 0.5²), v ~ N(0, 1), seeded',
      note: "medians of wall time per call (dataSync included); otherCores = other processes' mean CPU while the configuration was timed (a quiet run stays near 0); peakTensorBytes from tf.profile (null at L = 65536, where profiling every kernel exhausts memory); peakRssBytes = VmHWM of the configuration's own process",
    },
    results,
    targets: evaluateTargets(results),
  };
  writeFileSync(resultsFile, `${JSON.stringify(out, null, 2)}\n`);
  return out;
}

async function main() {
  const previous: Result[] =
    args.has('--resume') && existsSync(resultsFile)
      ? (JSON.parse(readFileSync(resultsFile, 'utf8')).results as Result[])
      : [];
  const results: Result[] = [...previous];
  const plan: [Op, number][] = [];
  for (const L of lengths)
    for (const op of [
      'favor-bidirectional',
      'favor-causal',
      'exact-bidirectional',
      'exact-causal',
    ] as Op[])
      plan.push([op, L]);
  for (const L of favorOnly)
    for (const op of ['favor-bidirectional', 'favor-causal'] as Op[]) plan.push([op, L]);
  for (const [i, [op, L]] of plan.entries()) {
    if (results.some((r) => r.op === op && r.length === L)) continue; // --resume
    process.stderr.write(`[${i + 1}/${plan.length}] ${op} L=${L} … `);
    const r = runChild(op, L);
    results.push(r);
    writeResults(results);
    process.stderr.write(
      `${r.medianMs.toFixed(1)} ms, other processes ${r.otherCores?.toFixed(2) ?? '?'} cores (peak tensors ${r.peakTensorBytes === null ? '-' : (r.peakTensorBytes / 2 ** 20).toFixed(0)} MiB, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB)\n`,
    );
  }
  const { targets } = writeResults(results);
  console.log('\nop                           L    median ms   peak tensors MiB   peak RSS MiB');
  for (const r of results) {
    const tensors = r.peakTensorBytes === null ? '-' : (r.peakTensorBytes / 2 ** 20).toFixed(0);
    console.log(
      `${r.op.padEnd(22)} ${String(r.length).padStart(7)} ${r.medianMs.toFixed(1).padStart(12)} ${tensors.padStart(18)} ${(r.peakRssBytes / 2 ** 20).toFixed(0).padStart(14)}`,
    );
  }
  console.log('\ntargets:');
  for (const x of targets)
    console.log(`  ${x.met ? 'met    ' : 'NOT MET'} ${x.name}: ${x.value} (target ${x.target})`);
  console.log(`\nwrote ${resultsFile}`);
}

const argv = process.argv.slice(2);
if (argv[0] === '--one') await one(argv[1] as Op, Number(argv[2]));
else await main();
