/**
 * In a browser bundled by Vite, tfjs-backend-wasm fetches its .wasm files: this serves them through
 * Vite (`?url` imports) as absolute URLs (usable from Web Workers too, e.g. as createAttentionPool's
 * `wasmPaths`).
 */
export async function browserWasmPaths(): Promise<Record<string, string>> {
  const url = async (p: Promise<{ default: string }>) =>
    new URL((await p).default, location.href).href;
  return {
    'tfjs-backend-wasm.wasm': await url(
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url'),
    ),
    'tfjs-backend-wasm-simd.wasm': await url(
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url'),
    ),
    'tfjs-backend-wasm-threaded-simd.wasm': await url(
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url'),
    ),
  };
}

/** Tells tfjs-backend-wasm where Vite serves its .wasm files. Call before useBackend('wasm'). */
export async function setBrowserWasmPaths(): Promise<void> {
  const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
  setWasmPaths(await browserWasmPaths());
}
