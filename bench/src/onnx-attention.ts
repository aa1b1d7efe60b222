/**
 * Exact softmax attention as an ONNX model built in code (no model file, no protobuf library):
 * a minimal protobuf writer for the handful of ModelProto fields it needs.
 *   S = MatMul(Q, Transpose(K)) · d^-1/2 (+ causal mask input of −1e9 above the diagonal),
 *   O = MatMul(Softmax(S, axis −1), V);  Q, K [B, H, L, d], V [B, H, L, dv] → O [B, H, L, dv].
 */

/** Protobuf wire encoding, just enough for ONNX's ModelProto. */
class Proto {
  private readonly bytes: number[] = [];

  private varint(v: number | bigint): void {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    while (x >= 0x80n) {
      this.bytes.push(Number((x & 0x7fn) | 0x80n));
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }

  int(field: number, v: number): this {
    this.varint((field << 3) | 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.varint((field << 3) | 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.bytes.push(...b);
    return this;
  }

  bytesField(field: number, data: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(data.length);
    for (const x of data) this.bytes.push(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Proto): this {
    return this.bytesField(field, m.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INT = 2;
const ATTR_INTS = 7;

function valueInfo(name: string, dims: (number | string)[]): Proto {
  const shape = new Proto();
  for (const d of dims) {
    shape.message(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().string(2, d));
  }
  const tensorType = new Proto().int(1, FLOAT).message(2, shape);
  return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
}

function node(op: string, inputs: string[], outputs: string[], attrs: Proto[] = []): Proto {
  const n = new Proto();
  for (const i of inputs) n.string(1, i);
  for (const o of outputs) n.string(2, o);
  n.string(3, `${op}_${outputs[0]}`).string(4, op);
  for (const a of attrs) n.message(5, a);
  return n;
}

function floatTensor(name: string, dims: number[], values: Float32Array): Proto {
  const t = new Proto();
  for (const d of dims) t.int(1, d);
  t.int(2, FLOAT).string(8, name);
  return t.bytesField(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** The additive causal mask [L, L] fed as the causal graph's `mask` input: −1e9 above the diagonal. */
export function causalMask(L: number): Float32Array {
  const mask = new Float32Array(L * L);
  for (let i = 0; i < L; i++) mask.fill(-1e9, i * L + i + 1, (i + 1) * L);
  return mask;
}

/** The serialized ONNX model (opset 17) of exact attention for inputs [B, H, L, d] / [B, H, L, dv]. */
export function exactAttentionOnnx(opts: {
  batch: number;
  heads: number;
  length: number;
  dim: number;
  valueDim: number;
  causal: boolean;
}): Uint8Array {
  const { batch: B, heads: H, length: L, dim: d, valueDim: dv, causal } = opts;
  const graph = new Proto();
  graph.message(
    1,
    node(
      'Transpose',
      ['K'],
      ['Kt'],
      [new Proto().string(1, 'perm').int(20, ATTR_INTS).int(8, 0).int(8, 1).int(8, 3).int(8, 2)],
    ),
  );
  graph.message(1, node('MatMul', ['Q', 'Kt'], ['S0']));
  graph.message(1, node('Mul', ['S0', 'scale'], ['S1']));
  let scores = 'S1';
  if (causal) {
    graph.message(1, node('Add', ['S1', 'mask'], ['S2']));
    scores = 'S2';
  }
  graph.message(
    1,
    node('Softmax', [scores], ['P'], [new Proto().string(1, 'axis').int(20, ATTR_INT).int(3, -1)]),
  );
  graph.message(1, node('MatMul', ['P', 'V'], ['O']));
  graph.string(2, 'attention');
  graph.message(5, floatTensor('scale', [], Float32Array.of(1 / Math.sqrt(d))));
  graph.message(11, valueInfo('Q', [B, H, L, d]));
  // the causal mask is an input (causalMask below), not an initializer: at L = 16384 it is 1 GB
  if (causal) graph.message(11, valueInfo('mask', [L, L]));
  graph.message(11, valueInfo('K', [B, H, L, d]));
  graph.message(11, valueInfo('V', [B, H, L, dv]));
  graph.message(12, valueInfo('O', [B, H, L, dv]));
  return new Proto()
    .int(1, 8) // ir_version
    .string(2, 'kernel-attention bench')
    .message(7, graph)
    .message(8, new Proto().string(1, '').int(2, 17)) // opset_import
    .finish();
}
