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

/**
 * Parses a safetensors file. Throws with the reason for a truncated file, a bad header, an unknown
 * dtype, or a tensor whose shape and byte range disagree.
 */
export function readSafetensors(bytes: Uint8Array): Map<string, SafetensorsTensor> {
  const fn = 'readSafetensors';
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${fn}: bytes must be a Uint8Array`);
  if (bytes.length < 8) {
    throw new RangeError(
      `${fn}: file is truncated: ${bytes.length} bytes, the header length alone takes 8`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    throw new RangeError(
      `${fn}: file is truncated: the header says ${headerLength} bytes of JSON, only ${bytes.length - 8} bytes follow`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new SyntaxError(`${fn}: bad header: not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SyntaxError(`${fn}: bad header: expected a JSON object of tensors`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const out = new Map<string, SafetensorsTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = e?.dtype as SafetensorsDtype;
    if (!(typeof dtype === 'string' && dtype in BYTES)) {
      throw new SyntaxError(`${fn}: tensor '${name}': unknown dtype ${JSON.stringify(e?.dtype)}`);
    }
    const shape = e.shape;
    const offsets = e.data_offsets;
    if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
      throw new SyntaxError(`${fn}: tensor '${name}': bad shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new SyntaxError(`${fn}: tensor '${name}': bad data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      throw new RangeError(
        `${fn}: tensor '${name}': data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes): the file is truncated`,
      );
    }
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (count * BYTES[dtype] !== end - begin) {
      throw new RangeError(
        `${fn}: tensor '${name}': shape [${shape.join(', ')}] of ${dtype} needs ${count * BYTES[dtype]} bytes, data_offsets give ${end - begin}`,
      );
    }
    out.set(name, {
      dtype,
      shape: shape as number[],
      data: decode(view, dataStart + begin, count, dtype),
    });
  }
  return out;
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

/** The `__metadata__` strings of a safetensors file ({} when it has none). */
export function readSafetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  readSafetensors(bytes); // validates the whole file (clear errors for truncation or a bad header)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as {
    __metadata__?: Record<string, string>;
  };
  return header.__metadata__ ?? {};
}
