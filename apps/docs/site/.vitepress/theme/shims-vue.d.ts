// Type-checks the theme's .ts files with tsc (the .vue components themselves are compiled by Vite).
declare module '*.vue' {
  import type { DefineComponent } from 'vue';

  const component: DefineComponent<object, object, unknown>;
  export default component;
}
