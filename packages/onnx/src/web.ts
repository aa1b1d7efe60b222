/**
 * onnxruntime-web in the browser: the WebGPU execution provider where the browser offers an
 * adapter, else WebAssembly — threaded when the page is cross-origin isolated (threads need
 * SharedArrayBuffer), single-threaded otherwise.
 */
import type { OrtModule } from './runner.js';

/** The parts of onnxruntime-web's module this package sets (besides OrtModule's). */
interface OrtWebEnv {
  env: { wasm: { numThreads?: number; wasmPaths?: string | Record<string, string> } };
}

/** Options of {@link loadOnnxRuntimeWeb}. */
export interface OnnxRuntimeWebOptions {
  /**
   * The onnxruntime-web module, imported by the page (`import * as ort from 'onnxruntime-web'`) —
   * the way bundlers see it. Default: `import('onnxruntime-web')` by name, which only works where
   * the browser itself resolves bare names (an import map).
   */
  module?: unknown;
  /**
   * Where onnxruntime-web's `.wasm` and `.mjs` files are served (its `env.wasm.wasmPaths`): a URL
   * prefix, or a map from file name to URL. Bundlers: see the docs' bundler page. Default: where
   * onnxruntime-web finds them itself (next to its own script).
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * WebAssembly threads. Default: the browser's cores (at most 4) when the page is cross-origin
   * isolated (served with `Cross-Origin-Opener-Policy: same-origin` and
   * `Cross-Origin-Embedder-Policy: require-corp`), else 1. More than 1 on a page that is not
   * isolated is an error.
   */
  threads?: number;
  /** 'auto' (default): 'webgpu' where the browser gives a WebGPU adapter, else 'wasm'. */
  executionProvider?: 'auto' | 'webgpu' | 'wasm';
}

/** What {@link loadOnnxRuntimeWeb} chose, to pass on to OnnxAttention and OnnxPerformerLM. */
export interface OnnxRuntimeWeb {
  /** The module, as `{ ort }` of OnnxAttentionOptions. */
  ort: OrtModule;
  /** `{ executionProviders }` for the sessions, as `{ sessionOptions }` of OnnxAttentionOptions. */
  sessionOptions: { executionProviders: string[] };
  executionProvider: 'webgpu' | 'wasm';
  /** WebAssembly threads set (the wasm provider also runs what WebGPU does not). */
  threads: number;
  /** Why this provider and thread count, in words. */
  reason: string;
}

/**
 * Loads onnxruntime-web and picks how it runs here: the WebGPU execution provider where the
 * browser gives an adapter (the wasm provider beside it for any operator WebGPU lacks), else
 * WebAssembly; threads when the page is cross-origin isolated.
 *
 * @param opts - `{ module, wasmPaths, threads, executionProvider }`
 *
 * @example
 * ```ts no-run: browser only (onnxruntime-web, a page)
 * import * as ortWeb from 'onnxruntime-web';
 * import { loadOnnxRuntimeWeb, OnnxAttention } from '@kernel-attention/onnx';
 *
 * const web = await loadOnnxRuntimeWeb({ module: ortWeb });
 * console.log(web.reason); // e.g. "webgpu: the browser gave a WebGPU adapter; 1 wasm thread: …"
 * const favor = await OnnxAttention.favor({ dim: 64, numProjections: 256 }, web);
 * ```
 */
export async function loadOnnxRuntimeWeb(
  opts: OnnxRuntimeWebOptions = {},
): Promise<OnnxRuntimeWeb> {
  const fn = 'loadOnnxRuntimeWeb';
  if (opts === null || typeof opts !== 'object') {
    throw new TypeError(
      `${fn}: options must be an object ({ module, wasmPaths, threads, executionProvider }), got ${opts === null ? 'null' : typeof opts}`,
    );
  }
  let mod = opts.module as
    | (OrtModule & OrtWebEnv & { default?: OrtModule & OrtWebEnv })
    | undefined;
  if (mod === undefined) {
    const specifier = 'onnxruntime-web';
    try {
      mod = (await import(/* @vite-ignore */ specifier)) as typeof mod;
    } catch (e) {
      throw new Error(
        `${fn}: cannot load onnxruntime-web (${(e as Error).message.split('\n')[0]}); install it (npm install onnxruntime-web) and pass the imported module: loadOnnxRuntimeWeb({ module: await import('onnxruntime-web') })`,
      );
    }
  }
  const ort = (mod?.InferenceSession ? mod : mod?.default) as (OrtModule & OrtWebEnv) | undefined;
  if (!ort?.InferenceSession || !ort.env?.wasm) {
    throw new TypeError(
      `${fn}: module must be the onnxruntime-web module (with InferenceSession and env.wasm)`,
    );
  }
  const { threads, reason: threadReason } = chooseThreads(fn, opts.threads);
  ort.env.wasm.numThreads = threads;
  if (opts.wasmPaths !== undefined) ort.env.wasm.wasmPaths = opts.wasmPaths;
  const { provider, reason: providerReason } = await chooseProvider(fn, opts.executionProvider);
  return {
    ort,
    sessionOptions: { executionProviders: provider === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'] },
    executionProvider: provider,
    threads,
    reason: `${providerReason}; ${threadReason}`,
  };
}

/** WebAssembly threads: asked for, or the cores (at most 4) on a cross-origin isolated page, else 1. */
function chooseThreads(fn: string, asked: number | undefined): { threads: number; reason: string } {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const cores =
    (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
      ?.hardwareConcurrency ?? 1;
  const plural = (n: number) => `${n} wasm thread${n > 1 ? 's' : ''}`;
  if (asked !== undefined) {
    if (!Number.isInteger(asked) || asked < 1 || asked > 64) {
      throw new RangeError(`${fn}: threads must be an integer from 1 to 64, got ${String(asked)}`);
    }
    if (asked > 1 && !isolated) {
      throw new RangeError(
        `${fn}: threads = ${asked} needs a cross-origin isolated page (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp); this page is not`,
      );
    }
    return { threads: asked, reason: `${plural(asked)}: asked for` };
  }
  if (isolated) {
    const threads = Math.max(1, Math.min(cores, 4));
    return {
      threads,
      reason: `${plural(threads)}: the page is cross-origin isolated (${cores} cores)`,
    };
  }
  return {
    threads: 1,
    reason: '1 wasm thread: the page is not cross-origin isolated (threads need COOP/COEP headers)',
  };
}

/** The execution provider: WebGPU where the browser gives an adapter (unless 'wasm' is asked for). */
async function chooseProvider(
  fn: string,
  asked: OnnxRuntimeWebOptions['executionProvider'],
): Promise<{ provider: 'webgpu' | 'wasm'; reason: string }> {
  const wanted = asked ?? 'auto';
  if (!['auto', 'webgpu', 'wasm'].includes(wanted)) {
    throw new RangeError(
      `${fn}: executionProvider must be 'auto', 'webgpu' or 'wasm', got ${JSON.stringify(wanted)}`,
    );
  }
  if (wanted === 'wasm') return { provider: 'wasm', reason: 'wasm: asked for' };
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } })
    .navigator?.gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (adapter) return { provider: 'webgpu', reason: 'webgpu: the browser gave a WebGPU adapter' };
  const missing = gpu ? 'the browser gave no WebGPU adapter' : 'no navigator.gpu in this browser';
  if (wanted === 'webgpu') {
    throw new Error(`${fn}: executionProvider 'webgpu' asked for, but ${missing}`);
  }
  return { provider: 'wasm', reason: `wasm: ${missing}` };
}
