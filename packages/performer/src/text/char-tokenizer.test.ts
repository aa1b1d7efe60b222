import { expect, it } from 'vitest';
import { charTokenizer, encodeDocuments } from './char-tokenizer.js';

it('encodes printable ASCII, tab and newline one token per character and decodes them back', () => {
  let all = '\t\n';
  for (let c = 32; c <= 126; c++) all += String.fromCharCode(c);
  const ids = charTokenizer.encode(all);
  expect(ids).toEqual(Array.from({ length: 97 }, (_, i) => i + 1));
  expect(charTokenizer.decode(ids)).toBe(all);
  expect(charTokenizer.encode('Hi!\n')).toEqual([43, 76, 4, 2]);
});

it('maps other characters to the unknown token and the boundary to a blank line', () => {
  expect(charTokenizer.encode('é€\u0000')).toEqual([98, 98, 98]);
  expect(charTokenizer.decode([43, 0, 76, 98])).toBe('H\n\ni?');
  expect(charTokenizer.decode([0], { boundaryText: '|' })).toBe('|');
});

it('documents become one stream with a boundary before each', () => {
  expect(Array.from(encodeDocuments(['ab', 'c']))).toEqual([0, 68, 69, 0, 70, 0]);
});

it('rejects what is not text or token ids', () => {
  expect(() => charTokenizer.encode(5 as never)).toThrow(/text must be a string, got number/);
  expect(() => charTokenizer.decode([1, 99])).toThrow(
    /ids\[1\] must be an integer in \[0, 98\], got 99/,
  );
  expect(() => charTokenizer.decode('ab' as never)).toThrow(/ids must be an array/);
});
