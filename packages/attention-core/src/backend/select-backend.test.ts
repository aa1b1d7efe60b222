import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { requestedBackend } from '../testing/backends.js';
import { selectBackend } from './select-backend.js';

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
  it('reports the initialisation error tfjs gives, and for wasm how to serve its files', async () => {
    const fail = (name: string) =>
      tf.registerBackend(name, () => {
        throw new Error(`no ${name} here (fetch of ${name}.wasm failed: 404)`);
      });
    fail('broken-test-backend');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const { backend, rejected } = await selectBackend(['broken-test-backend', 'cpu']);
      expect(backend).toBe('cpu');
      expect(rejected['broken-test-backend']).toMatch(
        /failed to initialise: .*no broken-test-backend here \(fetch of broken-test-backend\.wasm failed: 404\)/,
      );
      // a wasm that cannot start (as in a bundle without the .wasm files) gets the recipe; the
      // wasm project has a real wasm backend, so a stand-in name shows the same path there
      if (tf.findBackendFactory('wasm') === null) {
        fail('wasm');
        const r = await selectBackend(['wasm', 'cpu']);
        expect(r.rejected.wasm).toMatch(/404.*pass their URLs as selectBackend's wasmPaths/);
        tf.removeBackend('wasm');
      }
    } finally {
      warn.mockRestore();
      tf.removeBackend('broken-test-backend');
    }
  });
  it('passes wasmPaths to setWasmPaths before wasm starts, and checks the options', async () => {
    const calls: unknown[] = [];
    const setWasmPaths = (p: string | Record<string, string>) => calls.push(p);
    const started = tf.findBackend('wasm') !== null;
    await selectBackend(['cpu'], { wasmPaths: '/assets/', setWasmPaths });
    expect(calls).toEqual([]); // wasm was not tried
    if (!started && tf.findBackendFactory('wasm') !== null) {
      await selectBackend(['wasm'], { wasmPaths: '/assets/', setWasmPaths }).catch(() => {});
      expect(calls).toEqual(['/assets/']);
    }
    await expect(selectBackend(['cpu'], { wasmPaths: '/assets/' })).rejects.toThrow(
      /wasmPaths needs setWasmPaths too .* got setWasmPaths undefined/,
    );
    await expect(
      selectBackend(['cpu'], { wasmPaths: 3 as unknown as string, setWasmPaths }),
    ).rejects.toThrow(/wasmPaths must be a URL prefix string or a map .* got number/);
    await expect(selectBackend(['cpu'], null as unknown as Record<string, never>)).rejects.toThrow(
      /options must be an object .* got null/,
    );
  });
  it('fails with every reason when nothing can start', async () => {
    await expect(selectBackend(['nope'])).rejects.toThrow(
      /no backend of \["nope"\] could start: nope: not registered/,
    );
    await expect(selectBackend([])).rejects.toThrow(/preferred must be a non-empty array/);
  });
});
