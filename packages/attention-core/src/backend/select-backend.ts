import * as tf from '@tensorflow/tfjs-core';

/** The default preference: fastest first where each really runs. */
export const DEFAULT_BACKEND_ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;

export interface BackendSelection {
  backend: string;
  /** Why each backend tried before the chosen one was rejected. */
  rejected: Record<string, string>;
}

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /**
   * Where tfjs-backend-wasm fetches its `.wasm` files: a URL prefix ending in `/`, or a map from
   * file name (`tfjs-backend-wasm.wasm`, `tfjs-backend-wasm-simd.wasm`,
   * `tfjs-backend-wasm-threaded-simd.wasm`) to URL. Needed in a browser bundle (Vite, webpack),
   * where the files are not beside the script; given to `setWasmPaths` before wasm starts.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * `setWasmPaths` of `@tensorflow/tfjs-backend-wasm` (required with `wasmPaths`: core does not
   * import that optional package itself, so that bundles without wasm do not include it).
   */
  setWasmPaths?: (prefixOrFileMap: string | Record<string, string>) => void;
}

const WASM_HINT =
  'in a browser bundle tfjs-backend-wasm fetches its .wasm files relative to the page: serve them ' +
  "and pass their URLs as selectBackend's wasmPaths (with setWasmPaths from @tensorflow/tfjs-backend-wasm)";

/**
 * Activates the first backend of `preferred` that is registered and initialises, and says why the
 * others were rejected (the initialisation error tfjs reports, with a hint for wasm in a bundle).
 * Import the backend packages you want considered first.
 *
 * @param preferred - backend names, most preferred first (default webgpu, webgl, wasm, cpu)
 * @param options - `{ wasmPaths, setWasmPaths }`, for wasm in a browser bundle
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-wasm';
 * import '@tensorflow/tfjs-backend-cpu';
 * import { selectBackend } from '@kernel-attention/core';
 * const { backend, rejected } = await selectBackend(); // e.g. 'wasm', { webgpu: 'not registered …', … }
 * ```
 *
 * @example
 * ```ts no-run: in a browser bundle (Vite): the .wasm files served as assets
 * import '@tensorflow/tfjs-backend-webgpu';
 * import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
 * import { selectBackend } from '@kernel-attention/core';
 * import simd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
 * import plain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
 * import threaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
 *
 * const { backend, rejected } = await selectBackend(['webgpu', 'wasm'], {
 *   setWasmPaths,
 *   wasmPaths: {
 *     'tfjs-backend-wasm.wasm': plain,
 *     'tfjs-backend-wasm-simd.wasm': simd,
 *     'tfjs-backend-wasm-threaded-simd.wasm': threaded,
 *   },
 * });
 * ```
 */
export async function selectBackend(
  preferred: readonly string[] = DEFAULT_BACKEND_ORDER,
  options: SelectBackendOptions = {},
): Promise<BackendSelection> {
  checkSelection(preferred, options);
  const { wasmPaths, setWasmPaths } = options;
  const rejected: Record<string, string> = {};
  for (const name of preferred) {
    if (tf.findBackendFactory(name) === null && tf.findBackend(name) === null) {
      rejected[name] =
        `not registered (import @tensorflow/tfjs-backend-${name} to make it available)`;
      continue;
    }
    if (name === 'wasm' && wasmPaths !== undefined && tf.findBackend('wasm') === null) {
      setWasmPaths!(wasmPaths);
    }
    const reason = await tryBackend(name);
    if (reason === null) return { backend: name, rejected };
    rejected[name] =
      name === 'wasm' && wasmPaths === undefined ? `${reason} (${WASM_HINT})` : reason;
  }
  throw new Error(
    `selectBackend: no backend of ${JSON.stringify(preferred)} could start: ${Object.entries(
      rejected,
    )
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}`,
  );
}

function checkSelection(preferred: readonly string[], options: SelectBackendOptions): void {
  if (
    !Array.isArray(preferred) ||
    preferred.length === 0 ||
    preferred.some((p) => typeof p !== 'string')
  ) {
    throw new TypeError(
      `selectBackend: preferred must be a non-empty array of backend names, got ${JSON.stringify(preferred)}`,
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(
      `selectBackend: options must be an object ({ wasmPaths, setWasmPaths }), got ${options === null ? 'null' : typeof options}`,
    );
  }
  const { wasmPaths, setWasmPaths } = options;
  if (wasmPaths === undefined) return;
  if (typeof wasmPaths !== 'string' && (typeof wasmPaths !== 'object' || wasmPaths === null)) {
    throw new TypeError(
      `selectBackend: wasmPaths must be a URL prefix string or a map of file name to URL, got ${wasmPaths === null ? 'null' : typeof wasmPaths}`,
    );
  }
  if (typeof setWasmPaths !== 'function') {
    throw new TypeError(
      'selectBackend: wasmPaths needs setWasmPaths too (import { setWasmPaths } from ' +
        `'@tensorflow/tfjs-backend-wasm' and pass it), got setWasmPaths ${setWasmPaths === null ? 'null' : typeof setWasmPaths}`,
    );
  }
}

/**
 * Starts one registered backend: null when it is active, else why it failed. tfjs reports an
 * initialisation failure only through its logger (console.warn, silent when IS_TEST or PROD is
 * set) and a false result: hear it for this call, to keep its words.
 */
async function tryBackend(name: string): Promise<string | null> {
  const warnings: string[] = [];
  const warn = console.warn;
  const flags = { IS_TEST: tf.env().getBool('IS_TEST'), PROD: tf.env().getBool('PROD') };
  const silent = flags.IS_TEST || flags.PROD;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
    if (!silent) warn.apply(console, args);
  };
  tf.env().set('IS_TEST', false);
  tf.env().set('PROD', false);
  try {
    if (await tf.setBackend(name)) {
      await tf.ready();
      return null;
    }
    const said = warnings
      .map((w) => w.split('\n')[0]!) // the message, not the stack
      .filter((w) => !/^Initialization of backend .* failed$/.test(w));
    return `registered but failed to initialise${
      said.length > 0 ? `: ${said.join('; ')}` : ' (tf.setBackend returned false)'
    }`;
  } catch (e) {
    return `failed to initialise: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    console.warn = warn;
    tf.env().set('IS_TEST', flags.IS_TEST);
    tf.env().set('PROD', flags.PROD);
  }
}
