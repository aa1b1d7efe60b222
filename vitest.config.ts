import { readFileSync } from 'node:fs';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

/**
 * One vitest run for the whole monorepo. Packages resolve each other's `src/` through the
 * `@kernel-attention/source` export condition, so tests need no build. Core's suite (including
 * the shared parity suite of `@kernel-attention/core/testing/vitest`) runs once per backend, each
 * project providing its backend name through KA_BACKEND, as tfjs re-runs its op tests per backend.
 */
const conditions = ['@kernel-attention/source', 'module', 'node', 'import', 'default'];
const shared = {
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
};

function project(
  name: string,
  root: string,
  env: Record<string, string> = {},
  setupFiles: string[] = [],
  include = ['src/**/*.test.ts'],
) {
  return {
    ...shared,
    test: {
      name,
      root,
      include,
      exclude: ['**/*.browser.test.ts', '**/node_modules/**'],
      environment: 'node',
      env,
      setupFiles,
      testTimeout: 60_000,
    },
  };
}

const backendSetup = ['../../packages/attention-core/src/testing/vitest-backend-setup.ts'];

/**
 * WebGPU in Node: Dawn (the `webgpu` package) over the SwiftShader Vulkan driver of Debian's
 * chromium; LD_LIBRARY_PATH lets Dawn find the libvulkan that chromium ships.
 */
const webgpuNodeEnv = {
  KA_BACKEND: 'webgpu',
  VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json',
  LD_LIBRARY_PATH: [process.env.LD_LIBRARY_PATH, '/usr/lib/chromium'].filter(Boolean).join(':'),
};

/** Debian's chromium, headless; flags known to work here (see shared TOOLING.md), shared with bench:browser. */
const chromiumArgs = JSON.parse(
  readFileSync(new URL('./chromium-flags.json', import.meta.url), 'utf8'),
) as string[];

/** vitest browser mode in Debian's chromium, headless, with those flags. */
function headlessChromium() {
  return {
    enabled: true,
    headless: true,
    screenshotFailures: false,
    instances: [{ browser: 'chromium' as const }],
    provider: playwright({
      launchOptions: {
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        args: chromiumArgs,
      },
    }),
  };
}

/** The shared parity suite in headless Chromium on one backend. */
function browserProject(
  backend: 'webgl' | 'webgpu' | 'wasm',
  name = `core:browser:${backend}`,
  root = 'packages/attention-core',
) {
  const browserConditions = ['@kernel-attention/source', 'browser', 'module', 'import', 'default'];
  return {
    resolve: { conditions: browserConditions },
    optimizeDeps: { exclude: ['webgpu'] },
    test: {
      name,
      root,
      include: ['src/**/*.browser.test.ts'],
      setupFiles: ['../attention-core/src/testing/vitest-browser-setup.ts'],
      provide: { backend },
      testTimeout: 120_000,
      browser: headlessChromium(),
    },
  };
}

/**
 * @kernel-attention/onnx on onnxruntime-web in headless Chromium, the page cross-origin isolated
 * (COOP/COEP headers) so its WebAssembly runs threaded; tfjs on the cpu backend for core's ops.
 */
const onnxBrowserProject = {
  resolve: { conditions: ['@kernel-attention/source', 'browser', 'module', 'import', 'default'] },
  // onnxruntime-web finds its .wasm next to its own script: keep it out of Vite's pre-bundling
  optimizeDeps: { exclude: ['onnxruntime-web', 'webgpu'] },
  server: {
    headers: {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    },
  },
  test: {
    name: 'onnx:browser',
    root: 'packages/onnx',
    include: ['src/**/*.browser.test.ts'],
    setupFiles: ['../attention-core/src/testing/vitest-browser-setup.ts'],
    provide: { backend: 'cpu' },
    testTimeout: 120_000,
    browser: headlessChromium(),
  },
};

export default defineConfig({
  test: {
    projects: [
      project('random-features', 'packages/random-features'),
      project('feature-maps', 'packages/feature-maps', { KA_BACKEND: 'cpu' }, backendSetup),
      project('core:cpu', 'packages/attention-core', { KA_BACKEND: 'cpu' }, backendSetup),
      project('core:wasm', 'packages/attention-core', { KA_BACKEND: 'wasm' }, backendSetup),
      // the shared parity suite on WebGPU in Node (Dawn over Chromium's SwiftShader Vulkan driver)
      project('core:webgpu', 'packages/attention-core', webgpuNodeEnv, backendSetup, [
        'src/parity.test.ts',
      ]),
      // the same suite with the fused WebGPU kernels registered
      project('backend-webgpu', 'packages/backend-webgpu', webgpuNodeEnv, backendSetup),
      project('cli', 'apps/cli', { KA_BACKEND: 'cpu' }, backendSetup),
      project('performer', 'packages/performer', { KA_BACKEND: 'wasm' }, backendSetup),
      // the ONNX graphs on onnxruntime-node against core's ops (tfjs on cpu) and the Float64 references
      project('onnx', 'packages/onnx', { KA_BACKEND: 'cpu' }, backendSetup),
      // every code example of the docs (README, guides, site pages, TSDoc @example blocks)
      project('docs:examples', 'apps/docs', { KA_BACKEND: 'wasm' }, backendSetup, [
        'test/examples.test.ts',
      ]),
      // the packed tarballs as adopters install them: publint, attw, ESM, CommonJS, TypeScript, Vite
      project('consumers', 'apps/consumers', { KA_BACKEND: 'cpu' }, backendSetup, [
        'test/**/*.test.ts',
      ]),
      // the built site in headless Chromium: the playground on webgpu and webgl against Node
      project('docs:e2e', 'apps/docs', { KA_BACKEND: 'cpu' }, backendSetup, ['test/e2e.test.ts']),
      browserProject('webgl'),
      browserProject('webgpu'),
      browserProject('wasm'),
      // the parity suite and the fused-feature checks with the fused WebGL kernels registered
      browserProject('webgl', 'backend-webgl:browser', 'packages/backend-webgl'),
      browserProject('webgpu', 'backend-webgpu:browser', 'packages/backend-webgpu'),
      onnxBrowserProject,
    ],
  },
});
