import { defineConfig } from 'vitepress';

const guides = [
  ['Accuracy of FAVOR+', 'accuracy'],
  ['FAVOR++ and dense-exponential features', 'dense-exponential'],
  ['Relative positions (FFT)', 'relative-positions'],
  ['Combiner', 'combiner'],
  ['Persistent memory', 'persistent-memory'],
  ['Gated attention', 'gated-attention'],
  ['Relation-aware attention', 'relation-aware'],
  ['Bayesian attention', 'bayesian-attention'],
];
const packages = [
  ['random-features', 'random-features'],
  ['feature-maps', 'feature-maps'],
  ['core', 'core'],
  ['backend-webgpu', 'backend-webgpu'],
  ['backend-webgl', 'backend-webgl'],
  ['performer (model zoo)', 'performer'],
  ['onnx (ONNX Runtime)', 'onnx'],
];

export default defineConfig({
  title: 'kernel-attention',
  description:
    'FAVOR+ and the efficient attention mechanisms of its literature on TensorFlow.js: CPU, WASM, WebGL, WebGPU',
  cleanUrls: true,
  head: [['link', { rel: 'icon', href: '/favicon.svg', type: 'image/svg+xml' }]],
  // a dead link fails the build (the docs tests build the site)
  ignoreDeadLinks: false,
  markdown: {
    math: true, // $…$ and $$…$$ typeset by MathJax at build time (markdown-it-mathjax3)
    attrs: { disable: true },
    config(md) {
      // the guides are included from the repository's docs/ folder, where a link to the
      // performance notes points at docs/performance.md; on the site that is the benchmarks page
      const link = md.renderer.rules.link_open;
      md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
        const href = tokens[idx]!.attrGet('href');
        if (href && /^(\.\.\/)+performance\.md/.test(href)) {
          tokens[idx]!.attrSet('href', '/benchmarks');
        }
        return link
          ? link(tokens, idx, options, env, self)
          : self.renderToken(tokens, idx, options);
      };
    },
  },
  // the API reference is not in the sidebar: no previous/next links that would jump out of it
  transformPageData(pageData) {
    if (pageData.relativePath.startsWith('api/')) {
      pageData.frontmatter.prev = false;
      pageData.frontmatter.next = false;
    }
  },
  themeConfig: {
    nav: [
      { text: 'Getting started', link: '/getting-started' },
      { text: 'Playground', link: '/playground' },
      { text: 'Benchmarks', link: '/benchmarks' },
      { text: 'API', link: '/api/' },
    ],
    sidebar: [
      {
        text: 'Learn',
        items: [
          { text: 'Getting started', link: '/getting-started' },
          { text: 'The math', link: '/math' },
          { text: 'Write your own kernel', link: '/write-your-own-kernel' },
          { text: 'A Performer on real text', link: '/real-data' },
          { text: 'Backends', link: '/backends' },
          { text: 'Bundlers (Vite, webpack)', link: '/bundlers' },
          { text: 'Playground', link: '/playground' },
          { text: 'Benchmarks', link: '/benchmarks' },
        ],
      },
      { text: 'Packages', items: packages.map(([text, p]) => ({ text, link: `/packages/${p}` })) },
      { text: 'Guides', items: guides.map(([text, g]) => ({ text, link: `/guides/${g}` })) },
      { text: 'API reference', link: '/api/' },
    ],
    search: { provider: 'local' },
  },
  vite: {
    // the workspace packages from their TypeScript sources (no build step for the site)
    resolve: { conditions: ['@kernel-attention/source', 'browser', 'module', 'import', 'default'] },
    optimizeDeps: { exclude: ['webgpu'] },
    server: { fs: { allow: ['../../..'] } },
    build: { chunkSizeWarningLimit: 4096 },
  },
});
