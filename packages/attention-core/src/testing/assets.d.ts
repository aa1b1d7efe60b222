// Vite's `?url` imports (the browser test setup serves tfjs-backend-wasm's .wasm files this way)
declare module '*?url' {
  const url: string;
  export default url;
}
