import { maxRelativeError } from '@kernel-attention/core/testing';
import { loadHeldOutDocuments, loadPretrained, PerformerLM } from '@kernel-attention/performer';
import { describe, expect, it } from 'vitest';
import { performerLMModel } from './performer-lm.js';
import { loadOnnxRuntime } from './runner.js';

const ort = await loadOnnxRuntime();

/** The exported model's logits for `tokens` [B][N] on onnxruntime-node. */
async function ortLogits(bytes: Uint8Array, tokens: number[][]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const ids = BigInt64Array.from(tokens.flat().map((t) => BigInt(t)));
  const Tensor = ort.Tensor as unknown as new (
    type: 'int64',
    data: BigInt64Array,
    dims: number[],
  ) => unknown;
  const run = (
    session as unknown as {
      run(f: Record<string, unknown>): Promise<Record<string, { data: Float32Array }>>;
    }
  ).run.bind(session);
  const out = await run({ tokens: new Tensor('int64', ids, [tokens.length, tokens[0]!.length]) });
  await (session as unknown as { release(): Promise<void> }).release();
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
      [{ kernel: 'relu' as const }, /the 'relu' kernel/],
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
