import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import BenchCharts from './BenchCharts.vue';
import BenchTables from './BenchTables.vue';
import LmCharts from './LmCharts.vue';
import Playground from './Playground.vue';

export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('Playground', Playground);
    app.component('BenchCharts', BenchCharts);
    app.component('BenchTables', BenchTables);
    app.component('LmCharts', LmCharts);
  },
} satisfies Theme;
