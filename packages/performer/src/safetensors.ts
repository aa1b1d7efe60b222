/**
 * A small reader for the safetensors format (https://github.com/huggingface/safetensors): an
 * 8-byte little-endian header length n, n bytes of JSON { name: { dtype, shape, data_offsets } },
 * then the raw little-endian tensor bytes (offsets relative to the end of the header). No tfjs
 * dependency; floating-point tensors come back as Float32Array.
 */

export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL';

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** F64 and I64 as Float64Array; other float types as Float32Array; I32/I16/I8/U8/BOOL as Int32Array. */
  data: Float32Array | Int32Array | Float64Array;
}

const BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** The reference implementation's limit on the JSON header (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One header entry, checked. */
interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses a safetensors file, validating all of it before decoding anything (so a corrupted file
 * costs no allocation beyond its own size), as the format requires: an 8-byte little-endian
 * header length within the file (and at most MAX_HEADER_BYTES); a header of valid UTF-8 that is
 * one JSON object (trailing spaces allowed); every entry { dtype, shape, data_offsets } with a
 * supported dtype, a shape of non-negative integers and offsets [begin, end] whose size is
 * dtype × shape; `__metadata__`, if present, an object of strings; and the tensors' byte ranges,
 * in offset order, contiguous from 0 with no gap or overlap, covering the data section exactly.
 * Every error names what is wrong.
 *
 * @param bytes - the whole file
 */
export function readSafetensors(bytes: Uint8Array): Map<string, SafetensorsTensor> {
  const fn = 'readSafetensors';
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${fn}: bytes must be a Uint8Array`);
  const { entries, dataStart } = parseHeader(fn, bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const count = e.shape.reduce((a, b) => a * b, 1);
    out.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      data: decode(view, dataStart + e.begin, count, e.dtype),
    });
  }
  return out;
}

function parseHeader(
  fn: string,
  bytes: Uint8Array,
): { entries: Entry[]; dataStart: number; metadata: Record<string, string> } {
  const headerLength = checkHeaderLength(fn, bytes);
  const header = headerJson(fn, bytes, headerLength);
  const dataStart = 8 + headerLength;
  const entries: Entry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (
        typeof entry !== 'object' ||
        entry === null ||
        Array.isArray(entry) ||
        !Object.values(entry).every((x) => typeof x === 'string')
      ) {
        throw new SyntaxError(`${fn}: bad header: __metadata__ must map strings to strings`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    entries.push(checkEntry(fn, name, entry));
  }
  checkTiling(fn, entries, bytes.length - dataStart);
  return { entries, dataStart, metadata };
}

/** The declared header length, checked against the file and the format's limit. */
function checkHeaderLength(fn: string, bytes: Uint8Array): number {
  if (bytes.length < 8) {
    throw new RangeError(
      `${fn}: file is truncated: ${bytes.length} bytes, the header length alone takes 8`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8)) {
    throw new RangeError(
      `${fn}: file is truncated or corrupted: the header length says ${declared} bytes of JSON, only ${bytes.length - 8} bytes follow`,
    );
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new RangeError(
      `${fn}: the header length ${headerLength} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`,
    );
  }
  if (headerLength < 2) {
    throw new SyntaxError(`${fn}: bad header: ${headerLength} bytes cannot hold a JSON object`);
  }
  return headerLength;
}

/** The header: valid UTF-8, one JSON object. */
function headerJson(fn: string, bytes: Uint8Array, headerLength: number): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new SyntaxError(`${fn}: bad header: not valid UTF-8`);
  }
  if (!text.startsWith('{')) {
    throw new SyntaxError(
      `${fn}: bad header: it must start with '{' (a JSON object), got ${JSON.stringify(text.slice(0, 8))}`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `${fn}: bad header: not JSON (${(e as Error).message}); is the header length (${headerLength}) right?`,
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SyntaxError(`${fn}: bad header: expected a JSON object of tensors`);
  }
  return header as Record<string, unknown>;
}

/** The tensors' byte ranges, sorted by offset, must tile [0, dataLength) exactly. */
function checkTiling(fn: string, entries: Entry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin < at) {
      const other = sorted.find((o) => o !== e && o.begin < e.end && e.begin < o.end);
      throw new RangeError(
        `${fn}: tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap tensor '${other?.name ?? '?'}' (the format allows no overlap)`,
      );
    }
    if (e.begin > at) {
      throw new RangeError(
        `${fn}: tensor '${e.name}': data_offsets start at ${e.begin}, leaving bytes ${at}…${e.begin} of the data section unused (the format requires contiguous tensors)`,
      );
    }
    at = e.end;
  }
  if (at !== dataLength) {
    throw new RangeError(
      at > dataLength
        ? `${fn}: the tensors need ${at} bytes of data, only ${dataLength} follow the header: the file is truncated`
        : `${fn}: the data section holds ${dataLength} bytes but the tensors cover ${at}: ${dataLength - at} trailing bytes (the format requires the tensors to cover it exactly)`,
    );
  }
}

function checkEntry(fn: string, name: string, entry: unknown): Entry {
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) {
    throw new SyntaxError(
      `${fn}: tensor '${name}': expected { dtype, shape, data_offsets }, got ${JSON.stringify(entry)}`,
    );
  }
  const dtype = e.dtype;
  if (!(typeof dtype === 'string' && Object.hasOwn(BYTES, dtype))) {
    throw new SyntaxError(
      `${fn}: tensor '${name}': unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(BYTES).join(', ')})`,
    );
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
    throw new SyntaxError(`${fn}: tensor '${name}': bad shape ${JSON.stringify(shape)}`);
  }
  const offsets = e.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new SyntaxError(`${fn}: tensor '${name}': bad data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const size = count * BYTES[dtype as SafetensorsDtype];
  if (!Number.isSafeInteger(size) || size !== end - begin) {
    throw new RangeError(
      `${fn}: tensor '${name}': shape [${shape.join(', ')}] of ${dtype} needs ${size} bytes, data_offsets [${begin}, ${end}] give ${end - begin}`,
    );
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

function decode(view: DataView, at: number, count: number, dtype: SafetensorsDtype) {
  switch (dtype) {
    case 'F32': {
      const a = new Float32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat32(at + 4 * i, true);
      return a;
    }
    case 'F64': {
      const a = new Float64Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat64(at + 8 * i, true);
      return a;
    }
    case 'F16': {
      const a = new Float32Array(count);
      for (let i = 0; i < count; i++) a[i] = halfToFloat(view.getUint16(at + 2 * i, true));
      return a;
    }
    case 'BF16': {
      const a = new Float32Array(count);
      const u = new Uint32Array(a.buffer);
      for (let i = 0; i < count; i++) u[i] = view.getUint16(at + 2 * i, true) << 16;
      return a;
    }
    case 'I64': {
      const a = new Float64Array(count);
      for (let i = 0; i < count; i++) a[i] = Number(view.getBigInt64(at + 8 * i, true));
      return a;
    }
    default: {
      const a = new Int32Array(count);
      const size = BYTES[dtype];
      for (let i = 0; i < count; i++) {
        a[i] =
          size === 4
            ? view.getInt32(at + 4 * i, true)
            : size === 2
              ? view.getInt16(at + 2 * i, true)
              : dtype === 'I8'
                ? view.getInt8(at + i)
                : view.getUint8(at + i);
      }
      return a;
    }
  }
}

/**
 * Writes float tensors (Float32Array → F32, Float64Array → F64) and string metadata in the
 * safetensors format, tensors in the order given, the data section 8-byte aligned.
 *
 * @param tensors - name → `{ shape, data }` (Float32Array data is written as F32, Float64Array as F64)
 * @param metadata - string → string metadata (optional)
 */
export function writeSafetensors(
  tensors: Map<string, { shape: number[]; data: Float32Array | Float64Array }>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new RangeError(
        `writeSafetensors: tensor '${name}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`,
      );
    }
    const size = t.data instanceof Float64Array ? 8 : 4;
    header[name] = {
      dtype: size === 8 ? 'F64' : 'F32',
      shape: t.shape,
      data_offsets: [offset, offset + size * count],
    };
    offset += size * count;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // spaces keep the data section 8-byte aligned
  if (padded !== json.length)
    json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(padded - json.length));
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    if (t.data instanceof Float64Array) {
      for (let i = 0; i < t.data.length; i++) view.setFloat64(at + 8 * i, t.data[i]!, true);
      at += 8 * t.data.length;
    } else {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(at + 4 * i, t.data[i]!, true);
      at += 4 * t.data.length;
    }
  }
  return out;
}

/**
 * The `__metadata__` strings of a safetensors file ({} when it has none), the file validated whole.
 *
 * @param bytes - the whole file, or at least its header
 */
export function readSafetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  const fn = 'readSafetensorsMetadata';
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${fn}: bytes must be a Uint8Array`);
  return parseHeader(fn, bytes).metadata;
}
