// the value each browser test project provides to its tests (vitest `provide` / `inject`)
declare module 'vitest' {
  export interface ProvidedContext {
    backend: string;
  }
}

export {};
