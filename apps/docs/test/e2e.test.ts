// End to end: builds the site, serves it on 127.0.0.1, opens the playground in headless Debian
// chromium (Playwright; WebGPU and WebGL on SwiftShader), runs it on webgpu and on webgl, and checks
// the numbers it shows against the same computation in Node (same seed: our PRNG draws q, k, v and
// the features), that the page logs no console errors, and that a long sweep can be cancelled.
// Screenshots go to test-results/docs-e2e/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadHeldOutDocuments, loadPretrained } from '@kernel-attention/performer';
import { type Browser, chromium, type Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { serveSite } from '../scripts/serve.mjs';
import {
  type PlaygroundModel,
  playgroundModel,
  runPlayground,
  timeGeneration,
} from '../site/.vitepress/theme/playground-core.js';
import {
  DEFAULT_PARAMS,
  type PlaygroundParams,
} from '../site/.vitepress/theme/playground-params.js';

const repo = join(import.meta.dirname, '..', '..', '..');
const shots = join(repo, 'test-results', 'docs-e2e');
const chromiumArgs = JSON.parse(
  readFileSync(join(repo, 'chromium-flags.json'), 'utf8'),
) as string[];

let server: { url: string; close(): Promise<void> };
let browser: Browser;
/** The pretrained model in Node, for the numbers of 'text' inputs. */
let source: PlaygroundModel;

beforeAll(async () => {
  execFileSync('pnpm', ['run', 'build'], { cwd: join(repo, 'apps', 'docs'), stdio: 'pipe' });
  server = await serveSite({ port: 0 });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs,
    headless: true,
  });
  mkdirSync(shots, { recursive: true });
  source = playgroundModel(await loadPretrained(), await loadHeldOutDocuments());
}, 600_000);

afterAll(async () => {
  source?.model.dispose();
  await browser?.close();
  await server?.close();
});

/** Opens a page that records console errors and uncaught exceptions. */
async function open(path: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(new URL(path, server.url).href);
  return { page, errors };
}

const settled = (page: Page) =>
  page.waitForFunction(
    () => {
      const s = document.querySelector('[data-testid=status]')?.textContent ?? '';
      return s === 'done' || s === 'cancelled' || s.startsWith('error');
    },
    null,
    { timeout: 180_000 },
  );

const query = (p: PlaygroundParams, backend: string) =>
  `playground?backend=${backend}&inputs=${p.inputs}&layer=${p.layer}&head=${p.head}&L=${p.L}&d=${p.d}&m=${p.m}&featureMap=${p.featureMap}&orthogonal=${p.orthogonal ? 1 : 0}&causal=${p.causal ? 1 : 0}&seed=${p.seed}&scale=${p.scale}&shrinkage=${p.shrinkage ? 1 : 0}&autorun=1`;

describe('the docs site', () => {
  const cases: [string, PlaygroundParams][] = [
    ['webgpu', { ...DEFAULT_PARAMS, L: 96, m: 64, seed: 3, causal: true, layer: 2, head: 1 }],
    [
      'wasm',
      { ...DEFAULT_PARAMS, inputs: 'gaussian', L: 64, d: 32, m: 64, seed: 2, shrinkage: true },
    ],
    ['webgl', { ...DEFAULT_PARAMS, L: 80, m: 128, seed: 5, featureMap: 'oprf' }],
  ];
  it.each(cases)(
    'the playground on %s shows the numbers Node computes for the same seed, without console errors',
    async (backend, p) => {
      const { page, errors } = await open(query(p, backend));
      await settled(page);
      expect(await page.textContent('[data-testid=status]')).toBe('done');
      expect(await page.inputValue('[data-testid=backend]')).toBe(backend);
      expect(await page.textContent('[data-testid=detected]')).toContain(backend);
      const shown = async (id: string) =>
        Number(await page.getAttribute(`[data-testid=${id}]`, 'data-value'));
      const node = await runPlayground(p, source); // Node, the same inputs and seed
      for (const [id, want] of [
        ['output-error', node.outputError],
        ['matrix-error', node.matrixError],
        ['mean-error', node.meanBaselineError],
      ] as const) {
        const got = await shown(id);
        expect(Math.abs(got - want)).toBeLessThan(1e-3 * want + 1e-6);
      }
      // the heatmaps were drawn at L × L
      expect(
        await page.$eval('[data-testid=approx-map]', (c) => (c as HTMLCanvasElement).width),
      ).toBe(p.L);
      await page.screenshot({ path: join(shots, `playground-${backend}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    },
    300_000,
  );

  it.each([
    ['wasm', 24],
    ['webgl', 8],
    ['webgpu', 8],
  ] as const)(
    'the Generate tab on %s streams the pretrained model’s text, greedy as in Node, and times both decoders',
    async (backend, n) => {
      const { page, errors } = await open(`playground?backend=${backend}&tab=generate`);
      await page.waitForFunction(
        () => document.querySelector('[data-testid=status]')?.textContent === 'ready',
        null,
        { timeout: 120_000 },
      );
      await page.fill('[data-testid=prompt]', 'Life is ');
      await page.fill('[data-testid=new-tokens]', String(n));
      await page.click('[data-testid=compare-speed]');
      await settled(page);
      expect(await page.textContent('[data-testid=status]')).toBe('done');
      const { charTokenizer } = await import('@kernel-attention/performer');
      const prompt = [charTokenizer.boundary, ...charTokenizer.encode('Life is ')];
      const node = await timeGeneration(source.model, prompt, n, 'recurrent');
      // the page shows the greedy text of recomputing the prefix, which equals the recurrent one
      expect(await page.textContent('[data-testid=generated]')).toBe(
        charTokenizer.decode(node.tokens.slice(1)),
      );
      for (const id of ['speed-recurrent', 'speed-recompute']) {
        expect(Number(await page.textContent(`[data-testid=${id}]`))).toBeGreaterThan(0);
      }
      expect(
        await page.$eval('[data-testid=gen-exact-map]', (c) => (c as HTMLCanvasElement).width),
      ).toBe(prompt.length + n);
      await page.screenshot({
        path: join(shots, `playground-generate-${backend}.png`),
        fullPage: true,
      });
      expect(errors).toEqual([]);
      await page.close();
    },
    300_000,
  );

  it('after a sweep the heatmaps show the settings, with their colour scale; sweep status is not an error', async () => {
    const { page, errors } = await open('playground?backend=wasm&inputs=gaussian&L=64&d=16&m=32');
    await page.waitForFunction(
      () => document.querySelector('[data-testid=status]')?.textContent === 'ready',
      null,
      { timeout: 120_000 },
    );
    await page.click('[data-testid=sweep-m]');
    await page.waitForSelector('progress', { timeout: 60_000 });
    const during = await page.textContent('[data-testid=status]');
    expect(during).toMatch(/^measuring the output's relative error at m = \d+/);
    await settled(page);
    expect(await page.textContent('[data-testid=status]')).toBe('done');
    const painted = await page.evaluate(() => {
      const c = document.querySelector('[data-testid=exact-map]') as HTMLCanvasElement;
      const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let lit = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i + 3]! > 0) lit++;
      return { width: c.width, lit };
    });
    expect(painted.width).toBe(64);
    expect(painted.lit).toBe(64 * 64);
    expect(await page.isVisible('[data-testid=colour-scale]')).toBe(true);
    const ticks = await page.locator('[data-testid=colour-scale] .ticks span').allTextContents();
    expect(ticks[0]).toBe('0');
    expect(ticks).toHaveLength(5);
    expect(Number(ticks.at(-1))).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, 'playground-after-sweep.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 300_000);

  it('a long sweep shows progress and can be cancelled', async () => {
    const { page, errors } = await open('playground?backend=wasm');
    await page.waitForFunction(
      () => document.querySelector('[data-testid=status]')?.textContent === 'ready',
      null,
      { timeout: 120_000 },
    );
    await page.click('[data-testid=sweep-l]');
    await page.waitForSelector('progress', { timeout: 60_000 });
    await page.click('[data-testid=cancel]');
    await settled(page);
    expect(await page.textContent('[data-testid=status]')).toBe('cancelled');
    await page.screenshot({ path: join(shots, 'playground-cancelled.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 300_000);

  it('has no dead link: every internal link and asset of the built site resolves', async () => {
    const dist = join(repo, 'apps', 'docs', 'site', '.vitepress', 'dist');
    const pages = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.html'),
    );
    const dead: string[] = [];
    for (const page of pages) {
      const html = readFileSync(join(dist, page), 'utf8');
      for (const [, href] of html.matchAll(/(?:href|src)="([^"#?]+)[^"]*"/g)) {
        if (/^(https?:|mailto:|data:|\/\/)/.test(href!)) continue;
        const path = href!.startsWith('/')
          ? join(dist, decodeURIComponent(href!))
          : join(dist, page, '..', decodeURIComponent(href!));
        const found = [path, `${path}.html`, join(path, 'index.html')].some(
          (p) => existsSync(p) && (statSync(p).isFile() || existsSync(join(p, 'index.html'))),
        );
        if (!found) dead.push(`${page}: ${href}`);
      }
    }
    expect(pages.length).toBeGreaterThan(100);
    expect([...new Set(dead)]).toEqual([]);
  });

  it('API reference: modules named by package, every parameter described, no test-runner suites', () => {
    const api = join(repo, 'apps', 'docs', 'site', 'api');
    const index = readFileSync(join(api, 'index.md'), 'utf8');
    for (const name of ['core', 'core/parallel', 'core/testing', 'feature-maps', 'performer']) {
      expect(index).toContain(`[@kernel-attention/${name}]`);
    }
    const undocumented: string[] = [];
    for (const file of readdirSync(api, { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.md')) continue;
      const text = readFileSync(join(api, file), 'utf8');
      expect(text, file).not.toMatch(/runParitySuite|runPropertySuite/);
      for (const section of text.split(/^## Parameters$/m).slice(1)) {
        const params = section.split(/^## /m)[0]!;
        for (const [, name, body] of params.matchAll(
          /^### (\S+)\n\n([\s\S]*?)(?=^### |(?![\s\S]))/gm,
        )) {
          // a parameter section is its type line, then its description
          if (body!.trim().split(/\n\s*\n/).length < 2) undocumented.push(`${file}: ${name}`);
        }
      }
    }
    expect(undocumented).toEqual([]);
  });

  it('every page of the navigation renders, the benchmark plots among them', async () => {
    for (const path of [
      '',
      'getting-started',
      'math',
      'write-your-own-kernel',
      'backends',
      'bundlers',
      'benchmarks',
      'api/',
      'guides/combiner',
      'packages/core',
    ]) {
      const { page, errors } = await open(path);
      expect(await page.locator('h1').first().textContent()).toBeTruthy();
      if (path === 'benchmarks') {
        expect(await page.locator('.ka-chart svg polyline').count()).toBeGreaterThan(10);
        // every chart readable: at most 8 series (8 distinct colours), no 1e+3-style ticks
        const perChart = await page
          .locator('.ka-chart')
          .evaluateAll((charts) => charts.map((c) => c.querySelectorAll('polyline').length));
        expect(perChart.length).toBeGreaterThanOrEqual(7);
        expect(Math.max(...perChart)).toBeLessThanOrEqual(8);
        expect(await page.locator('.ka-chart svg text').allTextContents()).not.toContainEqual(
          expect.stringMatching(/e[+-]\d/),
        );
        expect(await page.locator('.ka-bench-tables table').count()).toBeGreaterThanOrEqual(4);
        await page.screenshot({ path: join(shots, 'benchmarks.png'), fullPage: true });
      }
      if (path === 'math') {
        // typeset by MathJax at build time: SVG formulas, no TeX source left in the text
        const formulas = page.locator('mjx-container svg');
        expect(await formulas.count()).toBeGreaterThan(20);
        expect((await formulas.first().boundingBox())!.width).toBeGreaterThan(0);
        expect(await page.locator('.vp-doc').textContent()).not.toMatch(/\\(frac|exp|omega)|\^\{/);
        await page.screenshot({ path: join(shots, 'math.png'), fullPage: true });
      }
      if (path === 'api/') {
        expect(await page.locator('.vp-doc a').allTextContents()).toContain(
          '@kernel-attention/core',
        );
        expect(await page.locator('.prev-next a').count()).toBe(0); // no jump out of the reference
      }
      expect(errors).toEqual([]);
      await page.close();
    }
  }, 300_000);
});
