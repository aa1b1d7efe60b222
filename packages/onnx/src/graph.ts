/**
 * A small builder of ONNX graphs over `onnx-proto` (the ONNX protobuf schema compiled by
 * protobufjs): named inputs and outputs with symbolic or fixed dimensions, float and int64
 * constants, and nodes whose outputs get fresh names. `model()` serializes a standard ModelProto
 * that any ONNX Runtime loads.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX's element types used here (TensorProto.DataType). */
export const FLOAT = onnx.TensorProto.DataType.FLOAT;
export const INT64 = onnx.TensorProto.DataType.INT64;
export const BOOL = onnx.TensorProto.DataType.BOOL;

/** The operator set the graphs are written for. */
export const OPSET = 17;

/** A dimension: a size, or the name of a symbolic size (the same name, the same size). */
export type Dim = number | string;

/** An attribute value: a number is an int unless written with `float()`; a subgraph as `{ graph }`. */
export type AttributeValue =
  | number
  | number[]
  | string
  | { float: number }
  | { graph: onnxProto.onnx.IGraphProto };

/** An attribute that is a float (ONNX attributes are typed; plain numbers are ints). */
export const float = (value: number): { float: number } => ({ float: value });

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string')
    return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if (typeof value === 'object' && 'graph' in value) return { name, type: T.GRAPH, g: value.graph };
  if (typeof value === 'object') return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.INT, i: value };
}

/** A typed value; `dims` null leaves its shape unstated (as a subgraph's inputs may). */
function valueInfo(name: string, elemType: number, dims: readonly Dim[] | null) {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        ...(dims === null
          ? {}
          : {
              shape: {
                dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
              },
            }),
      },
    },
  };
}

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: ReturnType<typeof valueInfo>[] = [];
  private readonly outputs: ReturnType<typeof valueInfo>[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly domains = new Set<string>();
  private count = 0;

  /**
   * @param name - the graph's name
   * @param prefix - prefix of the generated value names (a subgraph uses its own, so that its
   *   values never shadow the outer graph's)
   */
  constructor(
    readonly name: string,
    private readonly prefix = '',
  ) {}

  /**
   * Declares a float (or other element type) graph input (dims null: shape unstated).
   *
   * @param name - the input's name, as the feeds name it
   * @param dims - its dimensions (sizes or symbolic names), or null
   * @param elemType - its element type (default FLOAT)
   */
  input(name: string, dims: readonly Dim[] | null, elemType: number = FLOAT): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /**
   * Declares `value` (a node's output) as a graph output named `name` (dims null: unstated).
   *
   * @param value - the value to output
   * @param name - the output's name, as the results name it
   * @param dims - its dimensions (sizes or symbolic names), or null
   * @param elemType - its element type (default FLOAT)
   */
  output(
    value: string,
    name: string,
    dims: readonly Dim[] | null,
    elemType: number = FLOAT,
  ): string {
    this.node('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /**
   * A float constant (scalar when `dims` is empty).
   *
   * @param values - its values, row-major
   * @param dims - its dimensions (default: a scalar)
   */
  constant(values: readonly number[] | Float32Array, dims: readonly number[] = []): string {
    const name = `${this.prefix}c${this.count++}`;
    const data = Float32Array.from(values);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /**
   * An int64 constant (a shape, axes, a size).
   *
   * @param values - its values
   * @param dims - its dimensions (default: a vector; [] for a scalar)
   */
  ints(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = `${this.prefix}c${this.count++}`;
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: INT64,
      rawData: new Uint8Array(data.buffer),
    });
    return name;
  }

  /**
   * Adds a node with several outputs (fresh names); returns them.
   *
   * @param op - the operator, e.g. 'Scan'
   * @param inputs - the input values' names
   * @param outputs - how many outputs
   * @param attributes - the node's attributes
   */
  nodeN(
    op: string,
    inputs: readonly string[],
    outputs: number,
    attributes: Record<string, AttributeValue> = {},
  ): string[] {
    const names = Array.from({ length: outputs }, () => `${this.prefix}t${this.count++}`);
    this.nodes.push({
      opType: op,
      name: `${op}_${names[0]}`,
      input: [...inputs],
      output: names,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return names;
  }

  /**
   * Adds a node with one output; returns the output's name (`out`, or a fresh one). `domain`
   * names an operator set other than ONNX's (e.g. 'com.microsoft', ONNX Runtime's contrib ops).
   *
   * @param op - the operator, e.g. 'MatMul'
   * @param inputs - the input values' names
   * @param attributes - the node's attributes
   * @param out - the output's name (default: a fresh one)
   * @param domain - the operator's domain (default: ONNX's)
   */
  node(
    op: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue> = {},
    out?: string,
    domain?: string,
  ): string {
    const output = out ?? `${this.prefix}t${this.count++}`;
    if (domain) this.domains.add(domain);
    this.nodes.push({
      ...(domain ? { domain } : {}),
      opType: op,
      name: `${op}_${output}`,
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** The graph, e.g. as a Scan or Loop body (an attribute `{ graph }`). */
  graph(): onnxProto.onnx.IGraphProto {
    return {
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    };
  }

  /** The serialized model. */
  model(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'kernel-attention',
      opsetImport: [
        { domain: '', version: OPSET },
        ...[...this.domains].map((domain) => ({ domain, version: 1 })),
      ],
      graph: this.graph(),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
