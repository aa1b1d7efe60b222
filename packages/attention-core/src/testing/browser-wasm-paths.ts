/**
 * In a browser bundled by Vite, tfjs-backend-wasm fetches its .wasm files: this serves them through
 * Vite (`?url` imports) and tells tfjs where they are. Call before useBackend('wasm').
 */
export async function setBrowserWasmPaths(): Promise<void> {
  const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
  const url = async (p: Promise<{ default: string }>) => (await p).default;
  setWasmPaths({
    'tfjs-backend-wasm.wasm': await url(
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url'),
    ),
    'tfjs-backend-wasm-simd.wasm': await url(
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url'),
    ),
    'tfjs-backend-wasm-threaded-simd.wasm': await url(
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url'),
    ),
  });
}
