import { maxRelativeError } from '@kernel-attention/core/testing';
import {
  loadHeldOutDocuments,
  loadPretrained,
  PerformerEncoder,
  PerformerLM,
} from '@kernel-attention/performer';
import { describe, expect, it } from 'vitest';
import { OnnxPerformerLM } from './generate.js';
import {
  performerEncoderModel,
  performerLMModel,
  performerLMStepModel,
  stateNames,
} from './performer-lm.js';
import { loadOnnxRuntime } from './runner.js';

const ort = await loadOnnxRuntime();

/** An ONNX Runtime session on `bytes`, typed as the tests use it. */
async function open(bytes: Uint8Array) {
  const session = (await ort.InferenceSession.create(bytes)) as unknown as {
    run(feeds: Record<string, unknown>): Promise<Record<string, { data: Float32Array }>>;
    release(): Promise<void>;
  };
  return session;
}
const Tensor = ort.Tensor as unknown as new (
  type: 'int64' | 'float32',
  data: BigInt64Array | Float32Array,
  dims: number[],
) => unknown;
/** An int64 tensor of token ids or positions. */
const ids = (values: number[], dims: number[]) =>
  new Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);

/** The exported model's logits for `tokens` [B][N] on onnxruntime-node. */
async function ortLogits(bytes: Uint8Array, tokens: number[][]): Promise<Float32Array> {
  const session = await open(bytes);
  const out = await session.run({ tokens: ids(tokens.flat(), [tokens.length, tokens[0]!.length]) });
  await session.release();
  return out.logits!.data;
}

const tokensOf = (B: number, N: number, V: number, seed: number) =>
  Array.from({ length: B }, (_, b) =>
    Array.from({ length: N }, (_, i) => (seed * 7 + b * 13 + i * 5 + ((i * i) % 11)) % V),
  );

describe('a PerformerLM exported to ONNX', () => {
  it.each([
    { causal: true, kernel: 'positive' as const, rotary: true, tieEmbed: false, N: 37 },
    { causal: false, kernel: 'positive' as const, rotary: false, tieEmbed: true, N: 20 },
    { causal: true, kernel: 'hyperbolic' as const, rotary: true, tieEmbed: true, N: 70 },
    { causal: true, kernel: 'relu' as const, rotary: true, tieEmbed: false, N: 41 },
    { causal: false, kernel: 'relu' as const, rotary: false, tieEmbed: false, N: 23 },
  ])('gives the logits model.logits gives: %o', async ({ causal, kernel, rotary, tieEmbed, N }) => {
    const model = PerformerLM.create(
      {
        numTokens: 29,
        maxSeqLen: 96,
        dim: 32,
        depth: 2,
        heads: 2,
        nbFeatures: 16,
        causal,
        kernel,
        rotary,
        absolutePositions: !rotary,
        tieEmbed,
      },
      { seed: 3 },
    );
    const tokens = tokensOf(2, N, 29, 1);
    const ours = model.logits(tokens);
    const onnx = await ortLogits(performerLMModel(model, { chunkSize: 16 }), tokens);
    expect(onnx.length).toBe(2 * N * 29);
    expect(maxRelativeError(Array.from(onnx), Array.from(await ours.data()), 1e-4)).toBeLessThan(
      1e-4,
    );
    ours.dispose();
    model.dispose();
  });

  it('the pretrained fortunes Performer: the same logits on held-out text', async () => {
    const model = await loadPretrained('fortunes-performer');
    const text = (await loadHeldOutDocuments('fortunes-performer')).join('\n\n').slice(0, 300);
    const { charTokenizer } = await import('@kernel-attention/performer');
    const tokens = [[charTokenizer.boundary, ...charTokenizer.encode(text)]];
    const ours = model.logits(tokens);
    const onnx = await ortLogits(performerLMModel(model), tokens);
    expect(maxRelativeError(Array.from(onnx), Array.from(await ours.data()), 1e-4)).toBeLessThan(
      1e-4,
    );
    ours.dispose();
    model.dispose();
  }, 60_000);

  it('refuses what it cannot export, by name', () => {
    const base = {
      numTokens: 8,
      maxSeqLen: 16,
      dim: 8,
      depth: 1,
      heads: 2,
      nbFeatures: 4,
    };
    for (const [extra, message] of [
      [{ attention: 'softmax' as const }, /attention 'softmax'/],
      [{ stabilizer: 'performer-pytorch' as const }, /the 'performer-pytorch' stabilizer/],
      [{ denominatorEps: 1e-3 }, /a causal denominatorEps/],
    ] as const) {
      const model = PerformerLM.create({ ...base, causal: true, ...extra });
      expect(() => performerLMModel(model)).toThrow(message);
      model.dispose();
    }
    expect(() => performerLMModel(null as never)).toThrow(/model must be a PerformerLM/);
  });
});

describe('generation on ONNX Runtime: prefill, then one step per token on the recurrent state', () => {
  it.each(['positive', 'relu'] as const)(
    '%s kernel: a step from the prompt state gives the logits the full forward gives on the prefix',
    async (kernel) => {
      const model = PerformerLM.create(
        {
          numTokens: 23,
          maxSeqLen: 64,
          dim: 32,
          depth: 2,
          heads: 2,
          nbFeatures: 16,
          causal: true,
          kernel,
        },
        { seed: 5 },
      );
      const tokens = tokensOf(1, 30, 23, 2)[0]!;
      const prefill = await open(performerLMModel(model, { chunkSize: 8 }));
      const step = await open(performerLMStepModel(model));
      const first = await prefill.run({ tokens: ids(tokens.slice(0, 20), [1, 20]) });
      let state: Record<string, unknown> = {};
      for (const i of [0, 1]) for (const n of Object.values(stateNames(i))) state[n] = first[n];
      const full = await model.logits([tokens]).data();
      for (let p = 20; p < 30; p++) {
        const r = await step.run({
          token: ids([tokens[p]!], [1, 1]),
          position: ids([p], [1]),
          ...state,
        });
        const expected = Array.from(full.subarray(p * 23, (p + 1) * 23));
        expect(
          maxRelativeError(Array.from(r.logits!.data), expected, 1e-4),
          `position ${p}`,
        ).toBeLessThan(1e-4);
        state = {};
        for (const i of [0, 1])
          for (const n of Object.values(stateNames(i))) state[n] = r[`${n}_next`];
      }
      await Promise.all([prefill.release(), step.release()]);
      model.dispose();
    },
  );

  it('greedy text equals PerformerLM.generate on the pretrained model, and sampling is seeded', async () => {
    const model = await loadPretrained('fortunes-performer');
    const { charTokenizer } = await import('@kernel-attention/performer');
    const lm = await OnnxPerformerLM.create(model);
    const prompt = [charTokenizer.boundary, ...charTokenizer.encode('The ')];
    const ours = await model.generate(prompt, { maxNewTokens: 40 });
    const onnx = await lm.generate(prompt, { maxNewTokens: 40 });
    expect(charTokenizer.decode(onnx)).toBe(charTokenizer.decode(ours));
    const a = await lm.generate(prompt, { maxNewTokens: 20, temperature: 0.8, seed: 4 });
    const b = await lm.generate(prompt, { maxNewTokens: 20, temperature: 0.8, seed: 4 });
    expect(a).toEqual(b);
    expect(a).toHaveLength(prompt.length + 20);
    await lm.release();
    await expect(
      OnnxPerformerLM.create(
        PerformerLM.create({
          numTokens: 8,
          maxSeqLen: 8,
          dim: 8,
          depth: 1,
          heads: 2,
          nbFeatures: 4,
          causal: false,
        }),
      ),
    ).rejects.toThrow(/stepping needs a causal model/);
    model.dispose();
  }, 60_000);
});

describe('a PerformerEncoder exported to ONNX', () => {
  it('gives the masked-LM logits and the class logits the encoder gives, padding included', async () => {
    const encoder = PerformerEncoder.create(
      { numTokens: 17, maxSeqLen: 32, dim: 16, depth: 2, heads: 2, nbFeatures: 8, numClasses: 3 },
      { seed: 9 },
    );
    const tokens = tokensOf(2, 12, 17, 4);
    const mask = [new Array(12).fill(1), [...new Array(8).fill(1), 0, 0, 0, 0]];
    const session = await open(performerEncoderModel(encoder));
    const out = await session.run({
      tokens: ids(tokens.flat(), [2, 12]),
      mask: new Tensor('float32', Float32Array.from(mask.flat()), [2, 12]),
    });
    const mlm = encoder.mlmLogits(tokens, { mask });
    const cls = encoder.classify(tokens, { mask });
    expect(
      maxRelativeError(Array.from(out.mlm_logits!.data), Array.from(await mlm.data()), 1e-4),
    ).toBeLessThan(1e-4);
    expect(
      maxRelativeError(Array.from(out.class_logits!.data), Array.from(await cls.data()), 1e-4),
    ).toBeLessThan(1e-4);
    await session.release();
    mlm.dispose();
    cls.dispose();
    encoder.dispose();
    expect(() =>
      performerLMModel(
        PerformerLM.create({
          numTokens: 8,
          maxSeqLen: 8,
          dim: 8,
          depth: 1,
          heads: 2,
          nbFeatures: 4,
          causal: true,
        }),
        { mask: true },
      ),
    ).toThrow(/a padding mask is for bidirectional models/);
  });
});
