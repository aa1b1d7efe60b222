// selectBackend in headless Chromium, in each browser project (the setup has registered the
// project's backend; the union @tensorflow/tfjs import registers cpu and webgl too).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, inject, it } from 'vitest';
import { selectBackend } from './select-backend.js';

const backend = inject('backend');

afterAll(async () => {
  await tf.setBackend(backend);
});

it('takes the first backend that starts in the browser and says why the others were rejected', async () => {
  if (backend === 'webgpu') {
    const { backend: chosen, rejected } = await selectBackend();
    expect(chosen).toBe('webgpu'); // Chromium with --enable-unsafe-webgpu, SwiftShader adapter
    expect(rejected).toEqual({});
  } else if (backend === 'webgl') {
    const { backend: chosen, rejected } = await selectBackend();
    expect(chosen).toBe('webgl');
    expect(rejected.webgpu).toMatch(/not registered/);
  } else {
    const { backend: chosen, rejected } = await selectBackend(['webgpu', 'wasm', 'cpu']);
    expect(chosen).toBe('wasm');
    expect(rejected.webgpu).toMatch(/not registered/);
  }
  expect(tf.getBackend()).toBe(backend);
});
