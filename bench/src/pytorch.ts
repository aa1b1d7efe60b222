/**
 * `pnpm bench -- --only pytorch` (or `pnpm --filter @kernel-attention/bench bench:pytorch`): our
 * packages beside performer-pytorch (lucidrains), in one run, on the same machine.
 *
 * 1. Export check: PerformerLMs exported with `toPerformerPytorch` are loaded by performer-pytorch
 *    itself (a strict `load_state_dict`) and run in eval mode; their logits are compared with ours —
 *    the two checkpoints made by performer-pytorch (round trip) and the pretrained fortunes model.
 * 2. Speed: FAVOR+ as an ONNX graph on onnxruntime-node against performer-pytorch's FastAttention
 *    (bidirectional and causal), both on two threads, batch 1, 8 heads, d = 64, m = 256, at
 *    L = 1024 … 16384 (`--quick`: 1024 and 4096); other processes' CPU recorded per length.
 *
 * Needs Python with PyTorch and performer-pytorch importable: `PYTHON` (default python3) and
 * `PYTHONPATH` are passed on; OpenBLAS is told the CPU type (OPENBLAS_CORETYPE, default SkylakeX:
 * Debian's OpenBLAS 0.3.21 does not recognise these CPUs and falls back to slow kernels).
 * Writes bench/results/pytorch.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { watchOtherCpu } from '@kernel-attention/cli/cpu';
import { useBackend } from '@kernel-attention/core/testing';
import { OnnxAttention } from '@kernel-attention/onnx';
import {
  charTokenizer,
  loadHeldOutDocuments,
  loadPerformerPytorch,
  loadPretrained,
  type PerformerLM,
  toPerformerPytorch,
} from '@kernel-attention/performer';
import { gaussianOrthogonal } from '@kernel-attention/random-features';
import { gaussian, medianMs } from './timing.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The exit code `pnpm bench` reads as "skipped: a prerequisite is missing" (see all.ts). */
const SKIPPED = 3;
const python = process.env.PYTHON ?? 'python3';
const script = join(here, '..', 'python', 'performer_pytorch_bench.py');
const env = { ...process.env, OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? 'SkylakeX' };

function py(args: string[]): Record<string, unknown> {
  const r = spawnSync(python, [script, ...args], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(`${python} ${script} ${args[0]} exited ${r.status}`);
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

const probe = spawnSync(
  python,
  ['-c', 'import torch, performer_pytorch; print(torch.__version__)'],
  {
    env,
    encoding: 'utf8',
  },
);
if (probe.status !== 0) {
  console.error(
    `bench pytorch: skipped: needs PyTorch and performer-pytorch in ${python} (pip install performer-pytorch, or set PYTHON / PYTHONPATH):\n${(probe.stderr || probe.error?.message || '').trim().split('\n').at(-1)}`,
  );
  process.exit(SKIPPED);
}
const torchVersion = probe.stdout.trim();
await useBackend('wasm');

// 1. the export, checked by performer-pytorch itself
const fixtures = join(here, '..', '..', 'packages', 'performer', 'fixtures');
async function checkExport(name: string, model: PerformerLM, tokens: number[][]) {
  const dir = mkdtempSync(join(tmpdir(), 'ka-pytorch-'));
  try {
    const exported = toPerformerPytorch(model);
    const logits = model.logits(tokens);
    writeFileSync(join(dir, 'model.safetensors'), exported.safetensors);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(exported.config));
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(tokens));
    writeFileSync(join(dir, 'logits.json'), JSON.stringify(Array.from(await logits.data())));
    logits.dispose();
    const r = py(['check', dir]);
    console.error(`export ${name}: ${JSON.stringify(r)}`);
    return { model: name, differences: exported.differences, ...r };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const exports = [];
for (const name of ['lm-causal', 'encoder-bidirectional']) {
  const json = JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8')) as {
    config: Record<string, unknown>;
    tokens: number[][];
  };
  const model = loadPerformerPytorch(
    new Uint8Array(readFileSync(join(fixtures, `${name}.safetensors`))),
    json.config,
  );
  exports.push(
    await checkExport(`${name} (made by performer-pytorch, round trip)`, model, json.tokens),
  );
  model.dispose();
}
{
  const model = await loadPretrained('fortunes-performer');
  const text = (await loadHeldOutDocuments('fortunes-performer')).join('\n\n').slice(0, 511);
  const tokens = [[charTokenizer.boundary, ...charTokenizer.encode(text)]];
  exports.push(await checkExport('fortunes-performer (trained here)', model, tokens));
  model.dispose();
}

// 2. speed: FAVOR+ on ONNX Runtime against performer-pytorch's FastAttention
const [H, d, m] = [8, 64, 256];
const quick = process.argv.includes('--quick');
const lengths = quick ? [1024, 4096] : [1024, 2048, 4096, 8192, 16384];
const projection = gaussianOrthogonal(m, d, { seed: 0 });
const speed = [];
for (const L of lengths) {
  const cpu = watchOtherCpu({ children: true }); // the Python child is part of this run
  const [q, k, v] = [
    gaussian([1, H, L, d], 1, 0.5),
    gaussian([1, H, L, d], 2, 0.5),
    gaussian([1, H, L, d], 3, 1),
  ];
  const feeds = {
    q: q!,
    k: k!,
    v: v!,
    projection: { data: Float32Array.from(projection.data), dims: [m, d] },
  };
  const ours: Record<string, number> = {};
  for (const causal of [false, true]) {
    const favor = await OnnxAttention.favor(
      { dim: d, numProjections: m, eps: 1e-6, causal },
      { sessionOptions: { intraOpNumThreads: 2, interOpNumThreads: 1 } },
    );
    await favor.run(feeds);
    ours[String(causal)] = await medianMs(() => favor.run(feeds), L >= 8192 ? 3 : 5);
    await favor.release();
  }
  q!.dispose();
  k!.dispose();
  v!.dispose();
  const theirs = py([
    'time',
    '--lengths',
    String(L),
    '--threads',
    '2',
    '--runs',
    L >= 8192 ? '3' : '5',
  ]) as {
    results: { length: number; causal: boolean; ms: number }[];
  };
  const otherCores = cpu.stop().otherCores;
  for (const causal of [false, true]) {
    const p = theirs.results.find((r) => r.causal === causal)!.ms;
    const o = ours[String(causal)]!;
    speed.push({
      length: L,
      causal,
      ortFavorMs: o,
      performerPytorchMs: p,
      ratio: o / p,
      otherCores,
    });
    console.error(
      `L=${L} causal=${causal}: FAVOR+ on ORT ${o.toFixed(1)} ms, performer-pytorch ${p.toFixed(1)} ms (${(o / p).toFixed(2)}×), other CPU ${otherCores?.toFixed(2)}`,
    );
  }
}
const out = {
  meta: {
    date: new Date().toISOString(),
    torch: torchVersion,
    performerPytorch:
      'performer-pytorch (lucidrains) as importable here; the fixtures were made with v1.1.4',
    ours: 'FAVOR+ graph of @kernel-attention/onnx on onnxruntime-node 1.30 (CPU, intraOpNumThreads 2)',
    theirs:
      'performer_pytorch.FastAttention(dim_heads=64, nb_features=256), eval, torch.no_grad, torch.set_num_threads(2)',
    shape: { batch: 1, heads: H, dim: d, features: m },
    note: "medians after one warm-up; ratio = ours / performer-pytorch; otherCores = other processes' mean CPU while the length ran (quiet: near 0)",
  },
  exports,
  speed,
  targets: [
    {
      name: 'FAVOR+ on ORT / performer-pytorch FAVOR+, bidirectional, every L from 1024 to 16384',
      value: Math.max(
        ...speed.filter((s) => !s.causal).map((s) => Math.round(s.ratio * 100) / 100),
      ),
      target: '<= 0.5',
      met: speed.filter((s) => !s.causal).every((s) => s.ratio <= 0.5),
    },
  ],
};
writeFileSync(join(here, '..', 'results', 'pytorch.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out.targets));
