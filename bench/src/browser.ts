/**
 * `pnpm bench` (browser section): serves bench/browser with Vite on 127.0.0.1, opens it in
 * headless Debian chromium (Playwright, no browser download) once per backend — webgl, webgpu,
 * wasm — and writes bench/results/browser.json. Every backend here runs on the CPU (SwiftShader
 * for the GPU APIs): compare fused with composite on one backend, not times across machines.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright';
import { createServer } from 'vite';
import { SHAPE } from './gpu-cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const lengths = quick ? [1024] : [1024, 4096];
const only = process.argv.find((a) => a.startsWith('--backends='));
const backends = only ? only.slice('--backends='.length).split(',') : ['webgl', 'webgpu', 'wasm'];
/** Debian's chromium flags, the same as the browser test projects' (vitest.config.ts). */
const chromiumArgs = JSON.parse(
  readFileSync(join(here, '..', '..', 'chromium-flags.json'), 'utf8'),
) as string[];

const server = await createServer({
  root: join(here, '..', 'browser'),
  logLevel: 'warn',
  resolve: { conditions: ['@kernel-attention/source', 'browser', 'module', 'import', 'default'] },
  server: { host: '127.0.0.1', port: 0, fs: { allow: [join(here, '..', '..')] } },
  optimizeDeps: { exclude: ['webgpu'] },
});
await server.listen();
const address = server.httpServer?.address();
const port = typeof address === 'object' && address ? address.port : 0;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: chromiumArgs,
  headless: true,
});
const version = browser.version();
const sections: unknown[] = [];
let failed = false;
try {
  for (const backend of backends) {
    const page = await browser.newPage();
    page.on('console', (m) => process.stderr.write(`[${backend}] ${m.text()}\n`));
    await page.goto(`http://127.0.0.1:${port}/?backend=${backend}&lengths=${lengths.join(',')}`);
    await page.waitForFunction(
      () => (window as { __bench?: unknown }).__bench !== undefined,
      null,
      {
        timeout: 20 * 60_000,
      },
    );
    const section = (await page.evaluate(() => (window as { __bench?: unknown }).__bench)) as {
      error?: string;
    };
    if (section.error) {
      failed = true;
      process.stderr.write(`${backend} failed: ${section.error}\n`);
    }
    sections.push(section);
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
const out = {
  meta: {
    date: new Date().toISOString(),
    browser: `Debian chromium ${version}, headless; WebGL and WebGPU on SwiftShader (CPU)`,
    shape: SHAPE,
    note: 'medians of 3; composite = core without fused kernels, fused = the backend package registered',
  },
  backends: sections,
};
writeFileSync(join(here, '..', 'results', 'browser.json'), `${JSON.stringify(out, null, 2)}\n`);
if (failed) process.exit(1);
