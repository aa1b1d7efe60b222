// The corrupted-checkpoint table: every way a safetensors file can be damaged or forged is
// rejected before anything is decoded, with a message that names what is wrong.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPerformerPytorch } from './pytorch.js';
import {
  MAX_HEADER_BYTES,
  readSafetensors,
  readSafetensorsMetadata,
  writeSafetensors,
} from './safetensors.js';

const original = new Uint8Array(
  readFileSync(new URL('../fixtures/lm-causal.safetensors', import.meta.url)),
);
const config = (
  JSON.parse(readFileSync(new URL('../fixtures/lm-causal.json', import.meta.url), 'utf8')) as {
    config: Record<string, unknown>;
  }
).config;

const headerLength = Number(new DataView(original.buffer).getBigUint64(0, true));
const headerText = new TextDecoder().decode(original.subarray(8, 8 + headerLength));
type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
const header = JSON.parse(headerText) as Record<string, Entry>;
const tensorNames = Object.keys(header).filter((n) => n !== '__metadata__');
/** Tensors in the order of their bytes. */
const byOffset = [...tensorNames].sort(
  (a, b) => header[a]!.data_offsets[0] - header[b]!.data_offsets[0],
);

/** A file with this header object (re-encoded, padded like the original) and these data bytes. */
function withHeader(h: unknown, data = original.subarray(8 + headerLength)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The original file with its header edited (a deep copy of the header is passed to `edit`). */
function edited(edit: (h: Record<string, Entry>) => void): Uint8Array {
  const h = JSON.parse(headerText) as Record<string, Entry>;
  edit(h);
  return withHeader(h);
}

/** The original file with its 8-byte header length replaced. */
function withLength(n: bigint): Uint8Array {
  const out = Uint8Array.from(original);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

/** The original file with header byte `at` (0 = the first byte of the JSON) set to `value`. */
function withHeaderByte(at: number, value: number): Uint8Array {
  const out = Uint8Array.from(original);
  out[8 + at] = value;
  return out;
}

const first = byOffset[0]!;
const second = byOffset[1]!;
const last = byOffset[byOffset.length - 1]!;
const dataEnd = header[last]!.data_offsets[1];

describe('readSafetensors: the corrupted-checkpoint table', () => {
  it('reads the intact fixture (the table below starts from it)', () => {
    expect(readSafetensors(original).size).toBe(tensorNames.length);
    expect(8 + headerLength + dataEnd).toBe(original.length);
  });

  // truncation at every section boundary: inside the length field, inside the header, at the
  // end of the header, at the start and in the middle of every tensor's bytes, one byte short
  const cuts: [string, number, RegExp][] = [
    ['empty file', 0, /truncated: 0 bytes, the header length alone takes 8/],
    ['inside the header length', 5, /truncated: 5 bytes, the header length alone takes 8/],
    ['after the header length', 8, /header length says \d+ bytes of JSON, only 0 bytes follow/],
    ['inside the header', 8 + 10, /header length says \d+ bytes of JSON, only 10 bytes follow/],
    ['one byte before the header ends', 8 + headerLength - 1, /only \d+ bytes follow/],
    [
      'at the end of the header (no data)',
      8 + headerLength,
      new RegExp(
        `the tensors need ${dataEnd} bytes of data, only 0 follow the header: the file is truncated`,
      ),
    ],
    ...byOffset.flatMap((name): [string, number, RegExp][] => {
      const [b, e] = header[name]!.data_offsets;
      return [
        [`at the start of '${name}'`, 8 + headerLength + b, /the file is truncated/],
        [`inside '${name}'`, 8 + headerLength + Math.floor((b + e) / 2), /the file is truncated/],
      ];
    }),
    ['one byte short', original.length - 1, /the file is truncated/],
  ];
  it.each(cuts)('truncated %s (%i bytes) is rejected', (_, size, message) => {
    expect(() => readSafetensors(original.subarray(0, size))).toThrow(message);
  });

  const lengths: [string, bigint, RegExp][] = [
    ['2^64 − 1', 2n ** 64n - 1n, /header length says 18446744073709551615 bytes of JSON/],
    ['2^53', 2n ** 53n, /header length says 9007199254740992 bytes of JSON/],
    ['the whole file', BigInt(original.length), /header length says \d+ bytes of JSON, only/],
    ['0', 0n, /bad header: 0 bytes cannot hold a JSON object/],
    // one short: the JSON still parses (it ends in padding spaces or loses its brace) — either
    // way the data would be read one byte off
    ['one short', BigInt(headerLength - 1), /bad header|trailing bytes|not JSON/],
    ['one long', BigInt(headerLength + 1), /bad header|not JSON|truncated|not valid UTF-8/],
  ];
  it.each(lengths)('a header length of %s is rejected without allocating', (_, n, message) => {
    expect(() => readSafetensors(withLength(n))).toThrow(message);
  });

  it('a header length beyond the format limit is rejected before reading the header', () => {
    const file = new Uint8Array(8 + MAX_HEADER_BYTES + 1);
    new DataView(file.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    expect(() => readSafetensors(file)).toThrow(/exceeds the format's limit of 100000000 bytes/);
  });

  const flips: [string, Uint8Array, RegExp][] = [
    ['the opening brace', withHeaderByte(0, 0x5b /* [ */), /must start with '\{'/],
    ['a quote', withHeaderByte(1, 0x21 /* ! */), /bad header: not JSON/],
    ['a byte to invalid UTF-8', withHeaderByte(5, 0xff), /bad header: not valid UTF-8/],
    ['a byte to NUL', withHeaderByte(2, 0x00), /bad header: not JSON/],
    [
      "a digit of the first tensor's end offset",
      edited((h) => {
        h[first]!.data_offsets[1] += 1;
      }),
      new RegExp(
        `tensor '${first.replace(/\./g, '\\.')}': shape .* needs \\d+ bytes, data_offsets .* give`,
      ),
    ],
  ];
  it.each(flips)('flipping %s is rejected', (_, file, message) => {
    expect(() => readSafetensors(file)).toThrow(message);
  });

  const forged: [string, Uint8Array, RegExp][] = [
    [
      'an unknown dtype',
      edited((h) => {
        h[first]!.dtype = 'X99';
      }),
      /unsupported dtype "X99" \(supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL\)/,
    ],
    [
      'a dtype of another size (F16 for F32 data)',
      edited((h) => {
        h[first]!.dtype = 'F16';
      }),
      /of F16 needs \d+ bytes, data_offsets .* give/,
    ],
    [
      'a dtype that is not a string',
      edited((h) => {
        (h[first] as unknown as { dtype: number }).dtype = 4;
      }),
      /unsupported dtype 4/,
    ],
    [
      'overlapping data_offsets (one tensor pointing at another)',
      edited((h) => {
        h[second]!.data_offsets = [...h[first]!.data_offsets] as [number, number];
        h[second]!.shape = [...h[first]!.shape];
        h[second]!.dtype = h[first]!.dtype;
      }),
      /data_offsets .* overlap tensor/,
    ],
    [
      'offsets shifted by 4 bytes',
      edited((h) => {
        for (const e of Object.values(h)) {
          if (Array.isArray(e.data_offsets))
            e.data_offsets = [e.data_offsets[0] + 4, e.data_offsets[1] + 4];
        }
      }),
      /data_offsets start at 4, leaving bytes 0…4 of the data section unused/,
    ],
    [
      "one tensor's offsets shifted by 4 bytes",
      edited((h) => {
        const [b, e] = h[second]!.data_offsets;
        h[second]!.data_offsets = [b + 4, e + 4];
      }),
      /overlap|unused/,
    ],
    [
      'a negative offset',
      edited((h) => {
        h[first]!.data_offsets = [-4, h[first]!.data_offsets[1]];
      }),
      /bad data_offsets \[-4,/,
    ],
    [
      'fractional offsets',
      edited((h) => {
        h[first]!.data_offsets = [0.5, h[first]!.data_offsets[1]];
      }),
      /bad data_offsets \[0\.5,/,
    ],
    [
      'offsets in the wrong order',
      edited((h) => {
        const [b, e] = h[first]!.data_offsets;
        h[first]!.data_offsets = [e, b];
      }),
      /bad data_offsets/,
    ],
    [
      'a negative shape',
      edited((h) => {
        h[first]!.shape = [-1, ...h[first]!.shape.slice(1)];
      }),
      /bad shape \[-1,/,
    ],
    [
      'a shape that is not an array',
      edited((h) => {
        (h[first] as unknown as { shape: string }).shape = '64,64';
      }),
      /bad shape "64,64"/,
    ],
    [
      'a tensor of 2^40 values in 16 bytes',
      edited((h) => {
        h[first]!.shape = [2 ** 20, 2 ** 20];
      }),
      /shape \[1048576, 1048576\] of F32 needs 4398046511104 bytes/,
    ],
    [
      'an entry that is not an object',
      edited((h) => {
        (h as unknown as Record<string, unknown>)[first] = [1, 2];
      }),
      /expected \{ dtype, shape, data_offsets \}/,
    ],
    ['a header that is an array', withHeader([1, 2]), /must start with '\{'/],
    [
      'metadata that is not strings',
      edited((h) => {
        (h as unknown as Record<string, unknown>).__metadata__ = { format: 1 };
      }),
      /__metadata__ must map strings to strings/,
    ],
    [
      'a tensor left out (its bytes become a hole)',
      edited((h) => {
        delete h[second];
      }),
      /leaving bytes \d+…\d+ of the data section unused/,
    ],
    [
      'trailing bytes after the last tensor',
      (() => {
        const out = new Uint8Array(original.length + 4);
        out.set(original);
        return out;
      })(),
      /holds \d+ bytes but the tensors cover \d+: 4 trailing bytes/,
    ],
  ];
  it.each(forged)('%s is rejected', (_, file, message) => {
    expect(() => readSafetensors(file)).toThrow(message);
    expect(() => readSafetensorsMetadata(file)).toThrow(message);
  });

  it('our writer produces files the reader accepts (padded header, zero-size tensors)', () => {
    const file = writeSafetensors(
      new Map([
        ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
        ['empty', { shape: [0, 4], data: new Float32Array(0) }],
        ['b', { shape: [1], data: Float64Array.from([7]) }],
      ]),
      { note: 'x' },
    );
    const t = readSafetensors(file);
    expect(Array.from(t.get('a')!.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.get('empty')!.shape).toEqual([0, 4]);
    expect(Array.from(t.get('b')!.data)).toEqual([7]);
    expect(readSafetensorsMetadata(file)).toEqual({ note: 'x' });
  });
});

describe('loadPerformerPytorch: dtypes and config values are checked', () => {
  it('a weight stored as integers is rejected (its bytes would load as huge floats)', () => {
    const file = edited((h) => {
      h['norm.weight']!.dtype = 'I32';
    });
    expect(() => loadPerformerPytorch(file, config)).toThrow(
      /tensor 'norm\.weight' has dtype I32; weights must be floating point \(F32, F16, BF16, F64\)/,
    );
  });
  it.each([
    ['causal', 'false', /config\.causal must be true or false, got the string "false"/],
    ['tie_embed', 1, /config\.tie_embed must be true or false, got 1/],
    ['nb_features', '32', /config\.nb_features must be a positive integer, got the string "32"/],
    ['dim', 64.5, /config\.dim must be a positive integer, got 64\.5/],
    ['heads', '4', /config\.heads must be a positive integer, got the string "4"/],
    ['depth', [2], /config\.depth must be a positive integer, got an array/],
  ] as const)('config.%s = %j is rejected', (key, value, message) => {
    expect(() => loadPerformerPytorch(original, { ...config, [key]: value })).toThrow(message);
  });
});
