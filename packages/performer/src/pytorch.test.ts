import { readFileSync } from 'node:fs';
import { generalized } from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { PerformerLM } from './models/performer-lm/performer-lm.js';
import { loadPerformerPytorch, toPerformerPytorch } from './pytorch.js';
import { readSafetensors } from './safetensors.js';

interface Fixture {
  config: Record<string, unknown>;
  tokens: number[][];
  logits: number[];
  logits_shape: number[];
}

const fixture = (name: string) => ({
  bytes: new Uint8Array(readFileSync(new URL(`../fixtures/${name}.safetensors`, import.meta.url))),
  json: JSON.parse(
    readFileSync(new URL(`../fixtures/${name}.json`, import.meta.url), 'utf8'),
  ) as Fixture,
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('loadPerformerPytorch', () => {
  it.each(['lm-causal', 'encoder-bidirectional'])(
    '%s: reproduces the logits performer-pytorch produced (to 1e-4)',
    async (name) => {
      const { bytes, json } = fixture(name);
      const before = tf.memory().numTensors;
      const model = loadPerformerPytorch(bytes, json.config);
      const logits = model.logits(json.tokens);
      expect(logits.shape).toEqual(json.logits_shape);
      expect(maxAbsDiff(await logits.data(), json.logits)).toBeLessThan(1e-4);
      logits.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('generation: each step gives the logits of the full causal forward on the same prefix', async () => {
    const { bytes, json } = fixture('lm-causal');
    const model = loadPerformerPytorch(bytes, json.config);
    const tokens = json.tokens[0]!.slice(0, 12);
    const steps = await model.stepLogits(tokens);
    for (const n of [0, 5, 11]) {
      const full = model.logits([tokens.slice(0, n + 1)]);
      const row = (await full.data()).slice(n * 64, (n + 1) * 64);
      expect(maxAbsDiff(steps[n]!, row)).toBeLessThan(1e-4);
      full.dispose();
    }
    // greedy generation is deterministic and continues with the argmax of those logits
    const out = await model.generate(tokens, { maxNewTokens: 3 });
    expect(out.slice(0, 12)).toEqual(tokens);
    const last = steps[11]!;
    expect(out[12]).toBe(last.indexOf(Math.max(...last)));
    const sampled = await model.generate(tokens, {
      maxNewTokens: 4,
      temperature: 1,
      topK: 5,
      seed: 3,
    });
    expect(
      await model.generate(tokens, { maxNewTokens: 4, temperature: 1, topK: 5, seed: 3 }),
    ).toEqual(sampled);
    model.dispose();
  });

  it('bad input: ids out of range, too long, unsupported or mismatched config', () => {
    const { bytes, json } = fixture('lm-causal');
    const model = loadPerformerPytorch(bytes, json.config);
    expect(() => model.logits([[1, 64]])).toThrow(
      /token id 64 at \[0, 1\] is out of range \[0, 64\)/,
    );
    expect(() => model.logits([Array(129).fill(0)])).toThrow(
      /sequence length 129 exceeds the model's maxSeqLen 128/,
    );
    expect(() => model.logits([[1, 2], [3]])).toThrow(/rows of equal length/);
    model.dispose();
    expect(() => loadPerformerPytorch(bytes, { ...json.config, ff_glu: true })).toThrow(
      /config.ff_glu = true is not supported/,
    );
    expect(() => loadPerformerPytorch(bytes, { ...json.config, dim_head: 8 })).toThrow(
      /tensor 'performer.net.layers.0.0.fn.fast_attention.projection_matrix' has shape \[32, 16\], the config needs \[32, 8\]/,
    );
    expect(() => loadPerformerPytorch(bytes, { ...json.config, depth: 3 })).toThrow(
      /the checkpoint has no tensor 'performer.net.layers.2.0.fn.fast_attention.projection_matrix'/,
    );
    expect(() => loadPerformerPytorch(bytes, { ...json.config, depth: 1 })).toThrow(
      /tensors this config does not use/,
    );
  });
});

describe('toPerformerPytorch', () => {
  it.each(['lm-causal', 'encoder-bidirectional'])(
    '%s: load → export gives the same state_dict (names, shapes, bytes) and config, and load → export → load identical logits',
    async (name) => {
      const { bytes, json } = fixture(name);
      const model = loadPerformerPytorch(bytes, json.config);
      const before = tf.memory().numTensors;
      const exported = toPerformerPytorch(model);
      expect(tf.memory().numTensors).toBe(before);
      expect(exported.differences).toEqual([]);
      const original = readSafetensors(bytes);
      const written = readSafetensors(exported.safetensors);
      expect([...written.keys()].sort()).toEqual([...original.keys()].sort());
      for (const [key, t] of original) {
        const w = written.get(key)!;
        expect(w.shape, key).toEqual(t.shape);
        expect(w.dtype, key).toBe('F32');
        expect(Array.from(w.data), key).toEqual(Array.from(t.data));
      }
      for (const key of [
        'num_tokens',
        'max_seq_len',
        'dim',
        'depth',
        'heads',
        'dim_head',
        'nb_features',
        'ff_mult',
        'causal',
        'rotary_position_emb',
        'tie_embed',
        'qkv_bias',
        'attn_out_bias',
      ]) {
        expect(exported.config[key], key).toEqual(json.config[key]);
      }
      const again = loadPerformerPytorch(exported.safetensors, exported.config);
      const a = model.logits(json.tokens);
      const b = again.logits(json.tokens);
      expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
      tf.dispose([a, b]);
      again.dispose();
      model.dispose();
    },
  );

  it('a model made here (biases, tied output, no rotary) continues in performer-pytorch: same logits when its conventions match, differences listed when not', async () => {
    const config = {
      numTokens: 20,
      maxSeqLen: 16,
      dim: 16,
      depth: 2,
      heads: 2,
      nbFeatures: 12,
      rotary: false,
      tieEmbed: true,
      qkvBias: true,
      attnOutBias: true,
    };
    const tokens = [[1, 5, 7, 2, 19, 0, 3, 3, 8]];
    for (const conventions of [
      { stabilizer: 'performer-pytorch' as const, denominatorEps: 1e-6, differences: 0 },
      { stabilizer: 'exact' as const, denominatorEps: 0, differences: 2 },
    ]) {
      const model = PerformerLM.create({ ...config, ...conventions }, { seed: 4 });
      const exported = toPerformerPytorch(model);
      expect(exported.differences).toHaveLength(conventions.differences);
      expect(exported.config).toMatchObject({ rotary_position_emb: false, tie_embed: true });
      const names = [...readSafetensors(exported.safetensors).keys()];
      expect(names).toContain('pos_emb.emb.weight');
      expect(names).toContain('performer.net.layers.1.0.fn.to_q.bias');
      expect(names).not.toContain('to_out.weight');
      const back = loadPerformerPytorch(exported.safetensors, exported.config);
      const a = model.logits(tokens);
      const b = back.logits(tokens);
      // matching conventions: the same logits but for the projection's float32 rounding; with
      // the listed differences (stabilizer, eps) they move at the eps level, visibly but slightly
      const diff = maxAbsDiff(await a.data(), await b.data());
      if (conventions.differences === 0) expect(diff).toBeLessThan(1e-5);
      else expect(diff).toBeGreaterThan(1e-5);
      expect(diff).toBeLessThan(1e-2);
      tf.dispose([a, b]);
      back.dispose();
      model.dispose();
    }
  });

  it('models performer-pytorch cannot represent are rejected with the reason', () => {
    const base = { numTokens: 8, maxSeqLen: 8, dim: 8, depth: 1, heads: 2, nbFeatures: 4 };
    expect(() => toPerformerPytorch({} as PerformerLM)).toThrow(
      /toPerformerPytorch: model must be a PerformerLM, got object/,
    );
    for (const [extra, message] of [
      [{ attention: 'softmax' }, /FAVOR\+ attention only; this model uses attention 'softmax'/],
      [{ kernel: 'hyperbolic' }, /this model's kernel is 'hyperbolic'/],
      [{ kernel: 'relu' }, /this model's kernel is 'relu'/],
    ] as const) {
      const model = PerformerLM.create({ ...base, ...extra });
      expect(() => toPerformerPytorch(model)).toThrow(message);
      model.dispose();
    }
    const model = PerformerLM.create(base);
    const custom = model.withFeatureMap((_, projection) => generalized({ fn: 'relu', projection }));
    expect(() => toPerformerPytorch(custom)).toThrow(
      /uses a custom feature map \(withFeatureMap\)/,
    );
    custom.dispose();
    model.dispose();
  });
});

describe('readSafetensors', () => {
  const { bytes } = fixture('lm-causal');
  it('reads every tensor of the fixture with its shape', () => {
    const t = readSafetensors(bytes);
    expect(t.get('token_emb.weight')?.shape).toEqual([64, 64]);
    expect(t.get('token_emb.weight')?.data.length).toBe(64 * 64);
  });
  it('a truncated file, a bad header, a misshapen tensor give clear errors', () => {
    expect(() => readSafetensors(bytes.subarray(0, 4))).toThrow(/truncated: 4 bytes/);
    expect(() => readSafetensors(bytes.subarray(0, 100))).toThrow(
      /header length says \d+ bytes of JSON, only 92 bytes follow/,
    );
    expect(() => readSafetensors(bytes.subarray(0, bytes.length - 10))).toThrow(
      /the file is truncated/,
    );
    const bad = new Uint8Array(17);
    new DataView(bad.buffer).setBigUint64(0, 9n, true);
    bad.set(new TextEncoder().encode('{not json'), 8);
    expect(() => readSafetensors(bad)).toThrow(/bad header: not JSON/);
    const header = new TextEncoder().encode(
      JSON.stringify({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }),
    );
    const file = new Uint8Array(8 + header.length + 20);
    new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
    file.set(header, 8);
    expect(() => readSafetensors(file)).toThrow(
      /tensor 'w': shape \[2, 3\] of F32 needs 24 bytes, data_offsets \[0, 20\] give 20/,
    );
  });
});
