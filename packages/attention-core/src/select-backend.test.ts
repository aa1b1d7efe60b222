import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from './select-backend.js';
import { requestedBackend } from './testing/backends.js';

describe('selectBackend (Node: cpu and wasm registered, no GPU backends)', () => {
  afterAll(async () => {
    await tf.setBackend(requestedBackend());
  });
  it('takes the first backend that starts and says why the others were rejected', async () => {
    await import('@tensorflow/tfjs-backend-wasm');
    const { backend, rejected } = await selectBackend();
    expect(backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(rejected.webgpu).toMatch(/not registered \(import @tensorflow\/tfjs-backend-webgpu/);
    expect(rejected.webgl).toMatch(/webgl/);
    expect(Object.keys(rejected)).toEqual(['webgpu', 'webgl']);
  });
  it('honours the preference order', async () => {
    expect((await selectBackend(['cpu', 'wasm'])).backend).toBe('cpu');
  });
  it('fails with every reason when nothing can start', async () => {
    await expect(selectBackend(['nope'])).rejects.toThrow(
      /no backend of \["nope"\] could start: nope: not registered/,
    );
    await expect(selectBackend([])).rejects.toThrow(/preferred must be a non-empty array/);
  });
});
