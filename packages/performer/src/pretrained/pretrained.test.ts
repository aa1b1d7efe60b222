import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { charTokenizer, encodeDocuments } from '../text/char-tokenizer.js';
import { loadHeldOutDocuments, loadPretrained, splitDocuments } from './pretrained.js';

it('the pretrained fortunes model loads in one call and predicts held-out text far better than chance', async () => {
  const start = tf.memory().numTensors;
  const model = await loadPretrained('fortunes-performer');
  expect(model.config).toMatchObject({ numTokens: charTokenizer.vocabSize, depth: 4, heads: 4 });
  const docs = await loadHeldOutDocuments();
  expect(docs.length).toBeGreaterThan(500);
  const stream = encodeDocuments(docs);
  const L = 256;
  const inputs = [0, 1, 2, 3].map((w) => Array.from(stream.subarray(w * L, (w + 1) * L)));
  const targets = [0, 1, 2, 3].map((w) => Array.from(stream.subarray(w * L + 1, (w + 1) * L + 1)));
  const loss = model.loss(inputs, targets);
  const bpc = (await loss.data())[0]! / Math.LN2;
  loss.dispose();
  // uniform guessing is log2(99) = 6.6 bits per character, an untrained model about 7.6, character
  // frequencies alone (unigram counts) 4.8; the model card gives 3.8 on the whole validation split
  expect(bpc).toBeLessThan(4.2);
  const out = await model.generate([charTokenizer.boundary, ...charTokenizer.encode('The ')], {
    maxNewTokens: 20,
  });
  expect(out).toHaveLength(25);
  expect(charTokenizer.decode(out.slice(1))).toMatch(/^The [ -~\n\t]{20}$/);
  model.dispose();
  expect(tf.memory().numTensors).toBe(start);
}, 60_000);

it('names the models there are and reads the fortune format', async () => {
  await expect(loadPretrained('gpt-5' as never)).rejects.toThrow(
    /name must be one of 'fortunes-performer', got "gpt-5"/,
  );
  await expect(loadPretrained('fortunes-performer', null as never)).rejects.toThrow(
    /options must be an object, got null/,
  );
  await expect(
    loadPretrained('fortunes-performer', { url: new URL('file:///nonexistent/x.safetensors') }),
  ).rejects.toThrow(/ENOENT/);
  expect(splitDocuments('a\nb\n%\nc\n%\n\n%\nd\n')).toEqual(['a\nb', 'c', 'd']);
});
