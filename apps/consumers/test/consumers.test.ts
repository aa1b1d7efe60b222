/**
 * The published packages as an adopter gets them: each package is packed (`pnpm pack`, as
 * `pnpm publish` would), linted by publint and Are the Types Wrong, then installed from its
 * tarball into a fresh project outside the workspace (tfjs linked in, nothing else: no vitest, no
 * workspace sources) and used from Node ESM, CommonJS `require`, TypeScript under every module
 * resolution mode, and a Vite bundle that loads a saved tfjs-layers model with Performer layers.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileSystem, PerformerBlock } from '@kernel-attention/performer';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const app = resolve(here, '..');
const repo = resolve(app, '../..');
const PACKAGES = [
  'random-features',
  'feature-maps',
  'attention-core',
  'performer',
  'backend-webgpu',
  'backend-webgl',
  'onnx',
] as const;
const TFJS = [
  'tfjs-core',
  'tfjs-backend-cpu',
  'tfjs-backend-wasm',
  'tfjs-backend-webgl',
  'tfjs-backend-webgpu',
  'tfjs-layers',
];

const work = mkdtempSync(join(tmpdir(), 'ka-consumers-'));
const packs = join(work, 'packs');
const project = join(work, 'project');
const tarballs = new Map<string, string>();

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r.stdout;
}

/** Extracts a packed tarball as node_modules/<name> of `dir`, as npm would install it. */
function install(dir: string, tarball: string, name: string): void {
  const target = join(dir, 'node_modules', name);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
}

beforeAll(() => {
  mkdirSync(packs);
  for (const p of PACKAGES) {
    const dir = join(repo, 'packages', p);
    const before = new Set(readdirSync(packs));
    run('pnpm', ['pack', '--pack-destination', packs], dir); // prepack: a clean build of dist
    const made = readdirSync(packs).find((f) => !before.has(f))!;
    const name = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name as string;
    tarballs.set(name, join(packs, made));
  }
  mkdirSync(join(project, 'node_modules', '@tensorflow'), { recursive: true });
  writeFileSync(
    join(project, 'package.json'),
    '{"name":"consumer","private":true,"type":"module"}',
  );
  for (const [name, tarball] of tarballs) install(project, tarball, name);
  // onnx's dependency, as npm would install it
  symlinkSync(join(app, 'node_modules', 'onnx-proto'), join(project, 'node_modules', 'onnx-proto'));
  // tfjs as the adopter's own dependencies (the same copies the workspace tests use)
  for (const t of TFJS) {
    symlinkSync(
      join(app, 'node_modules', '@tensorflow', t),
      join(project, 'node_modules', '@tensorflow', t),
    );
  }
}, 300_000);

afterAll(() => {
  if (!process.env.KA_KEEP_CONSUMERS) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarballs', () => {
  it('are clean under publint (strict, suggestions included)', async () => {
    const { publint } = await import('publint');
    const { formatMessage } = await import('publint/utils');
    const report: string[] = [];
    for (const [name, tarball] of tarballs) {
      const bytes = readFileSync(tarball);
      const { messages, pkg } = await publint({
        pack: {
          tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
        },
        level: 'suggestion',
        strict: true,
      });
      for (const m of messages)
        report.push(`${name}: ${m.type}: ${formatMessage(m, pkg) ?? m.code}`);
    }
    expect(report).toEqual([]);
  });

  it('have correct types in every resolution mode under Are the Types Wrong', () => {
    // Ignored rule, on purpose: cjs-resolves-to-esm. The packages are ES modules only; `require()`
    // of them works from Node 20.19 (their `engines`), and the CommonJS test below does it.
    const failures: string[] = [];
    for (const [name, tarball] of tarballs) {
      const r = spawnSync(
        join(app, 'node_modules', '.bin', 'attw'),
        [tarball, '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'ascii'],
        { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
      );
      if (r.status !== 0) failures.push(`${name}:\n${r.stdout}${r.stderr}`);
    }
    expect(failures).toEqual([]);
  });

  it('ship no tests, and the sources their maps point at', () => {
    for (const tarball of tarballs.values()) {
      const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
      expect(files.filter((f) => /\.test\.|__fixtures__/.test(f))).toEqual([]);
      for (const map of files.filter((f) => f.endsWith('.js.map'))) {
        const sources = JSON.parse(
          execFileSync('tar', ['-xzOf', tarball, map], { encoding: 'utf8' }),
        ).sources as string[];
        for (const s of sources) {
          const target = join(dirname(map), s).replace(/\\/g, '/');
          expect(files, `${map} → ${s}`).toContain(target);
        }
      }
    }
  });
});

describe('installed from the tarballs in a fresh project', () => {
  it('Node ESM: favorAttention, the test-runner-free references, and the pretrained model', () => {
    writeFileSync(
      join(project, 'esm.mjs'),
      `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { favorAttention, softmaxAttention } from '@kernel-attention/core';
import { maxRelativeError, naiveSoftmaxAttention } from '@kernel-attention/core/testing';
import { softmaxKernelFeatures } from '@kernel-attention/feature-maps';
import { charTokenizer, loadPretrained } from '@kernel-attention/performer';
import { favorAttentionModel } from '@kernel-attention/onnx';
tf.env().set('IS_TEST', true);
await tf.setBackend('cpu');
const q = tf.randomNormal([1, 2, 16, 8], 0, 0.5, 'float32', 1);
const fav = favorAttention(q, q, q, { featureMap: softmaxKernelFeatures(8, 64, { seed: 0 }) });
const exact = await softmaxAttention(q, q, q).array();
const model = await loadPretrained('fortunes-performer');
console.log(JSON.stringify({
  favShape: fav.shape,
  refErr: maxRelativeError(exact, naiveSoftmaxAttention(await q.array(), await q.array(), await q.array())),
  vocab: model.config.numTokens,
  encoded: charTokenizer.encode('Hi').length,
  onnxBytes: favorAttentionModel({ dim: 8, numProjections: 16 }).length,
}));
`,
    );
    const out = JSON.parse(run('node', ['esm.mjs'], project));
    expect(out.favShape).toEqual([1, 2, 16, 8]);
    expect(out.refErr).toBeLessThan(1e-5);
    expect(out.vocab).toBeGreaterThan(2);
    expect(out.encoded).toBe(2);
    expect(out.onnxBytes).toBeGreaterThan(500); // a serialized ModelProto, built without ORT
  });

  it('CommonJS: require() of every package and subpath (Node ≥ 20.19)', () => {
    writeFileSync(
      join(project, 'cjs.cjs'),
      `const names = ${JSON.stringify([...tarballs.keys()])};
const loaded = names.map((n) => Object.keys(require(n)).length);
const testing = require('@kernel-attention/core/testing');
console.log(JSON.stringify({ loaded, testing: typeof testing.naiveFavorAttention }));
`,
    );
    const out = JSON.parse(run('node', ['cjs.cjs'], project));
    expect(out.loaded.every((n: number) => n > 0)).toBe(true);
    expect(out.testing).toBe('function');
  });

  it.each([
    ['node10', { module: 'commonjs', moduleResolution: 'node' }],
    ['node16', { module: 'node16', moduleResolution: 'node16' }],
    ['nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }],
  ])('TypeScript finds every type under moduleResolution %s', (mode, options) => {
    const dir = join(project, `ts-${mode}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...options,
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
          lib: ['es2022', 'dom'],
        },
        files: ['main.ts'],
      }),
    );
    // node10 and a CommonJS module see only what require() would; the rest use import
    writeFileSync(
      join(dir, 'main.ts'),
      `import type { FavorAttentionOptions } from '@kernel-attention/core';
import { naiveFavorAttention } from '@kernel-attention/core/testing';
import type { AttentionPool } from '@kernel-attention/core/parallel';
import type { FeatureMap } from '@kernel-attention/feature-maps';
import type { Rng } from '@kernel-attention/random-features';
import type { PerformerLMConfig } from '@kernel-attention/performer';
import type { OnnxAttentionInputs } from '@kernel-attention/onnx';
import { register as registerWebgpu } from '@kernel-attention/backend-webgpu';
import { register as registerWebgl } from '@kernel-attention/backend-webgl';
export const onnxInputs: OnnxAttentionInputs | undefined = undefined;
export const used: [FavorAttentionOptions | undefined, AttentionPool | undefined, FeatureMap | undefined, Rng | undefined, PerformerLMConfig | undefined] = [undefined, undefined, undefined, undefined, undefined];
export const fns = [naiveFavorAttention, registerWebgpu, registerWebgl];
// fails to compile if a type resolved to any (unresolved types are any under skipLibCheck)
// @ts-expect-error: featureMap must be a FeatureMap
export const bad: FavorAttentionOptions = { featureMap: 3 };
// @ts-expect-error: the reference takes arrays, not a string
naiveFavorAttention('q');
`,
    );
    if (mode.startsWith('node1') || mode === 'nodenext') {
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    }
    const r = spawnSync(join(app, 'node_modules', '.bin', 'tsc'), ['-p', dir], {
      encoding: 'utf8',
    });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('a Vite bundle (tree-shaken by "sideEffects") loading a saved model with Performer layers', () => {
  const modelDir = join(work, 'saved-model');
  let expected: number[] = [];

  beforeAll(async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.inputLayer({ inputShape: [5, 8] }),
        new PerformerBlock({ heads: 2, nbFeatures: 8, causal: true, seed: 4 }),
        tfl.layers.dense({ units: 3 }),
      ],
    });
    await model.save(fileSystem(modelDir));
    const x = tf.tensor3d(
      Array.from({ length: 40 }, (_, i) => Math.sin(i)),
      [1, 5, 8],
    );
    const y = model.predict(x) as tf.Tensor;
    expected = Array.from(await y.data());
    tf.dispose([x, y]);
    model.dispose();
  });

  /**
   * Bundles a consumer that loads the saved model (importing `fileSystem`, and `registerLayers`
   * when asked), runs the bundle in Node, returns its output.
   */
  async function bundleAndRun(
    dir: string,
    register: boolean,
  ): Promise<{ out?: number[]; error?: string }> {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'main.js'),
      `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { fileSystem${register ? ', registerLayers' : ''} } from '@kernel-attention/performer';
${register ? 'registerLayers();' : ''}
tf.env().set('IS_TEST', true);
await tf.setBackend('cpu');
try {
  const model = await loadLayersModel(fileSystem(${JSON.stringify(modelDir)}));
  const x = tf.tensor3d(Array.from({ length: 40 }, (_, i) => Math.sin(i)), [1, 5, 8]);
  console.log(JSON.stringify({ out: Array.from(await model.predict(x).data()) }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e.message) }));
}
`,
    );
    const { build } = await import('vite');
    await build({
      root: dir,
      configFile: false,
      logLevel: 'silent',
      ssr: { noExternal: true, target: 'node' },
      build: {
        ssr: join(dir, 'main.js'),
        outDir: join(dir, 'dist'),
        minify: false,
        rollupOptions: { output: { entryFileNames: 'bundle.mjs', codeSplitting: false } },
      },
    });
    const bundle = readFileSync(join(dir, 'dist', 'bundle.mjs'), 'utf8');
    expect(bundle).not.toMatch(/^import .*['"]@(tensorflow|kernel-attention)\//m); // all of it bundled
    return JSON.parse(run('node', [join(dir, 'dist', 'bundle.mjs')], dir));
  }

  it('with registerLayers() keeps the layers and predicts what the saving model predicted', async () => {
    const result = await bundleAndRun(join(project, 'vite-app'), true);
    expect(result.error).toBeUndefined();
    expect(result.out).toEqual(expected);
  }, 120_000);

  it('(control) without registerLayers() the bundler drops the registering module', async () => {
    // the package entry is side-effect free (so that PerformerLM users do not bundle
    // tfjs-layers): a program that only loads a model must call registerLayers(), as documented
    const result = await bundleAndRun(join(project, 'vite-app-unregistered'), false);
    expect(result.error).toMatch(/Unknown layer: PerformerBlock/);
  }, 120_000);
});

describe('the first release', () => {
  it('`changeset version` on a scratch checkout gives every package 0.1.0 and a changelog, and leaves the apps alone', () => {
    const scratch = join(work, 'scratch');
    run('git', ['worktree', 'add', '--detach', '--quiet', scratch, 'HEAD'], repo);
    try {
      symlinkSync(join(repo, 'node_modules'), join(scratch, 'node_modules'));
      run(join(repo, 'node_modules', '.bin', 'changeset'), ['version'], scratch);
      for (const p of PACKAGES) {
        const dir = join(scratch, 'packages', p);
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
        expect(pkg.version, p).toBe('0.1.0');
        const log = readFileSync(join(dir, 'CHANGELOG.md'), 'utf8');
        expect(log).toMatch(new RegExp(`^# ${pkg.name}\\n\\n## 0\\.1\\.0\\n\\n### Minor Changes`));
        // workspace ranges stay workspace ranges (pnpm publish turns them into versions)
        for (const [dep, range] of Object.entries(pkg.dependencies ?? {})) {
          if (dep.startsWith('@kernel-attention/')) expect(range).toBe('workspace:^');
        }
      }
      for (const app of ['cli', 'docs', 'consumers']) {
        const pkg = JSON.parse(readFileSync(join(scratch, 'apps', app, 'package.json'), 'utf8'));
        expect(pkg.version, app).toBe('0.0.0'); // private: never versioned
      }
      const left = readdirSync(join(scratch, '.changeset'));
      expect(left.filter((f) => f.endsWith('.md') && f !== 'README.md')).toEqual([]); // all consumed
    } finally {
      run('git', ['worktree', 'remove', '--force', scratch], repo);
    }
  }, 120_000);
});
