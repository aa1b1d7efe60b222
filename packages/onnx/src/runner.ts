/**
 * Running the graphs on ONNX Runtime in Node (onnxruntime-node, an optional dependency that this
 * package loads only when asked to run something).
 */
import {
  type ExactAttentionGraphOptions,
  exactAttentionModel,
  type FavorAttentionGraphOptions,
  favorAttentionModel,
} from './attention-graphs.js';
import { loadOnnxRuntimeWeb } from './web.js';

/** The parts of onnxruntime-node's API used here. */
export interface OrtModule {
  InferenceSession: {
    create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;
}

interface OrtSession {
  readonly inputNames: readonly string[];
  run(
    feeds: Record<string, unknown>,
  ): Promise<Record<string, { data: unknown; dims: readonly number[] }>>;
  release(): Promise<void>;
}

/** A float tensor as plain data (row-major), or a tfjs tensor (read with dataSync). */
export type TensorInput =
  | { data: Float32Array; dims: readonly number[] }
  | { shape: number[]; dataSync(): ArrayLike<number> };

/** A result: float32 values (row-major) and their dimensions. */
export interface TensorOutput {
  data: Float32Array;
  dims: number[];
}

/**
 * Loads onnxruntime-node, or says how to install it.
 *
 * @param specifier - the module to load (default 'onnxruntime-node')
 */
export async function loadOnnxRuntime(specifier = 'onnxruntime-node'): Promise<OrtModule> {
  try {
    const mod = (await import(/* @vite-ignore */ specifier)) as OrtModule & { default?: OrtModule };
    return mod.InferenceSession ? mod : (mod.default as OrtModule);
  } catch (e) {
    throw new Error(
      `@kernel-attention/onnx: cannot load ${specifier} (${(e as Error).message.split('\n')[0]}); ` +
        `install it beside this package to run ONNX graphs in Node: npm install ${specifier}`,
    );
  }
}

/**
 * The runtime and session options to use: the ones given, else onnxruntime-node in Node and
 * onnxruntime-web (as loadOnnxRuntimeWeb picks it) in a browser.
 *
 * @internal
 */
export async function runtimeFor(
  opts: OnnxAttentionOptions,
): Promise<{ ort: OrtModule; sessionOptions: Record<string, unknown> }> {
  if (opts.ort) return { ort: opts.ort, sessionOptions: opts.sessionOptions ?? {} };
  const inNode =
    typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions
      ?.node === 'string';
  if (inNode) return { ort: await loadOnnxRuntime(), sessionOptions: opts.sessionOptions ?? {} };
  const web = await loadOnnxRuntimeWeb();
  return {
    ort: web.ort,
    sessionOptions: { ...web.sessionOptions, ...(opts.sessionOptions ?? {}) },
  };
}

function toInput(
  fn: string,
  name: string,
  x: unknown,
  rank: number,
): { data: Float32Array; dims: number[] } {
  if (x !== null && typeof x === 'object' && 'dataSync' in x && 'shape' in x) {
    const t = x as { shape: number[]; dataSync(): ArrayLike<number> };
    return { data: Float32Array.from(t.dataSync()), dims: [...t.shape] };
  }
  if (x !== null && typeof x === 'object' && 'data' in x && 'dims' in x) {
    const t = x as { data: unknown; dims: unknown };
    if (!(t.data instanceof Float32Array) || !Array.isArray(t.dims)) {
      throw new TypeError(`${fn}: ${name}.data must be a Float32Array and ${name}.dims an array`);
    }
    const size = (t.dims as number[]).reduce((p, q) => p * q, 1);
    if (size !== t.data.length) {
      throw new RangeError(
        `${fn}: ${name} has ${t.data.length} values for dims [${(t.dims as number[]).join(', ')}] (${size} expected)`,
      );
    }
    if (t.dims.length !== rank) {
      throw new RangeError(
        `${fn}: ${name} must have rank ${rank}, got dims [${t.dims.join(', ')}]`,
      );
    }
    return { data: t.data, dims: [...(t.dims as number[])] };
  }
  throw new TypeError(
    `${fn}: ${name} must be a tfjs tensor or { data: Float32Array, dims }, got ${x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x}`,
  );
}

/** What an attention call gets: q, k, v, and the projection and mask where the graph has them. */
export interface OnnxAttentionInputs {
  q: TensorInput;
  k: TensorInput;
  v: TensorInput;
  /** [m, d]: the FAVOR+ projection (FAVOR+ graphs only); [B, H, m, d] for 'fitted' graphs. */
  projection?: TensorInput;
  /** 'fitted' graphs: [B, H, d, d] per role (see fittedParameters of the feature-maps package). */
  queryTransform?: TensorInput;
  keyTransform?: TensorInput;
  /** 'fitted' graphs: [B, H, m] per role. */
  queryOffset?: TensorInput;
  keyOffset?: TensorInput;
  /** [B, Lk]: 1 keep, 0 pad (graphs built with `mask: true` only). */
  mask?: TensorInput;
}

/** What a graph takes besides q, k and v, and what it computes. */
interface Needs {
  projection: boolean;
  mask: boolean;
  /** A 'fitted' FAVOR graph (per-group projection, transforms and offsets). */
  fitted: boolean;
  causal: boolean;
}

/** The inputs of 'fitted' graphs besides the projection, with their ranks. */
const FITTED_INPUTS = [
  ['queryTransform', 4],
  ['keyTransform', 4],
  ['queryOffset', 3],
  ['keyOffset', 3],
] as const;

/** Options of {@link OnnxAttention.create}. */
export interface OnnxAttentionOptions {
  /**
   * The ONNX Runtime module: default onnxruntime-node in Node (loadOnnxRuntime()) and
   * onnxruntime-web in a browser (loadOnnxRuntimeWeb(); pass its result, `{ ort, sessionOptions }`,
   * to choose how it runs).
   */
  ort?: OrtModule;
  /** ONNX Runtime session options, e.g. `{ intraOpNumThreads: 2 }`. */
  sessionOptions?: Record<string, unknown>;
}

/**
 * An attention graph in an ONNX Runtime session, run on float32 inputs.
 *
 * @example
 * ```ts
 * import { OnnxAttention } from '@kernel-attention/onnx';
 * import { gaussianOrthogonal } from '@kernel-attention/random-features';
 *
 * const favor = await OnnxAttention.favor({ dim: 16, numProjections: 32 });
 * const q = { data: new Float32Array(1 * 2 * 8 * 16).fill(0.1), dims: [1, 2, 8, 16] };
 * const w = gaussianOrthogonal(32, 16, { seed: 0 });
 * const out = await favor.run({
 *   q, k: q, v: q,
 *   projection: { data: Float32Array.from(w.data), dims: [32, 16] },
 * }); // out.dims: [1, 2, 8, 16]
 * await favor.release();
 * ```
 */
export class OnnxAttention {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtSession,
    private readonly needs: Needs,
    /** The serialized model the session runs (a standard .onnx file). */
    readonly model: Uint8Array,
  ) {}

  /**
   * FAVOR+ (bidirectional) on ONNX Runtime.
   *
   * @param graph - the graph's options (see favorAttentionModel)
   * @param opts - the runtime and session options
   */
  static async favor(
    graph: FavorAttentionGraphOptions,
    opts: OnnxAttentionOptions = {},
  ): Promise<OnnxAttention> {
    const model = favorAttentionModel(graph);
    return OnnxAttention.open(
      model,
      {
        projection: true,
        mask: graph.mask === true,
        fitted: graph.featureMap === 'fitted',
        causal: graph.causal === true,
      },
      opts,
    );
  }

  /**
   * Exact softmax attention on ONNX Runtime.
   *
   * @param graph - the graph's options (see exactAttentionModel)
   * @param opts - the runtime and session options
   */
  static async exact(
    graph: ExactAttentionGraphOptions,
    opts: OnnxAttentionOptions = {},
  ): Promise<OnnxAttention> {
    const model = exactAttentionModel(graph);
    return OnnxAttention.open(
      model,
      {
        projection: false,
        mask: graph.mask === true,
        fitted: false,
        causal: graph.causal === true,
      },
      opts,
    );
  }

  private static async open(
    model: Uint8Array,
    needs: Needs,
    opts: OnnxAttentionOptions,
  ): Promise<OnnxAttention> {
    if (opts === null || typeof opts !== 'object') {
      throw new TypeError(
        `OnnxAttention: options must be an object ({ ort, sessionOptions }), got ${opts === null ? 'null' : typeof opts}`,
      );
    }
    const { ort, sessionOptions } = await runtimeFor(opts);
    const session = await ort.InferenceSession.create(model, sessionOptions);
    return new OnnxAttention(ort, session, needs, model);
  }

  /** True for a causal graph. */
  get causal(): boolean {
    return this.needs.causal;
  }

  /** True for a 'fitted' FAVOR graph (a data-dependent map's parameters as inputs). */
  get fitted(): boolean {
    return this.needs.fitted;
  }

  /**
   * Runs the graph. q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv] → [B, H, Lq, dv].
   *
   * @param inputs - q, k, v, and projection / mask where the graph takes them
   */
  async run(inputs: OnnxAttentionInputs): Promise<TensorOutput> {
    const fn = 'OnnxAttention.run';
    if (inputs === null || typeof inputs !== 'object') {
      throw new TypeError(`${fn}: inputs { q, k, v, … } are required, got ${String(inputs)}`);
    }
    const feeds: Record<string, unknown> = {};
    const q = toInput(fn, 'q', inputs.q, 4);
    const k = toInput(fn, 'k', inputs.k, 4);
    const v = toInput(fn, 'v', inputs.v, 4);
    const [B, H, , d] = q.dims as [number, number, number, number];
    if (k.dims[0] !== B || k.dims[1] !== H || k.dims[3] !== d) {
      throw new RangeError(
        `${fn}: k [${k.dims}] does not match q [${q.dims}] in batch, heads or dim`,
      );
    }
    if (v.dims[0] !== B || v.dims[1] !== H || v.dims[2] !== k.dims[2]) {
      throw new RangeError(
        `${fn}: v [${v.dims}] does not match k [${k.dims}] in batch, heads or length`,
      );
    }
    for (const [name, t] of [
      ['q', q],
      ['k', k],
      ['v', v],
    ] as const) {
      feeds[name] = new this.ort.Tensor('float32', t.data, t.dims);
    }
    if (this.needs.projection) {
      if (inputs.projection === undefined) {
        throw new TypeError(
          `${fn}: this FAVOR+ graph needs projection ${this.needs.fitted ? '[B, H, m, d]' : '[m, d]'}`,
        );
      }
      const w = toInput(fn, 'projection', inputs.projection, this.needs.fitted ? 4 : 2);
      const groupsOk = !this.needs.fitted || (w.dims[0] === B && w.dims[1] === H);
      if (w.dims[w.dims.length - 1] !== d || !groupsOk) {
        throw new RangeError(
          this.needs.fitted
            ? `${fn}: projection [${w.dims}] must be [${B}, ${H}, m, ${d}] (per (batch, head) group)`
            : `${fn}: projection [${w.dims}] must have d = ${d} columns`,
        );
      }
      feeds.projection = new this.ort.Tensor('float32', w.data, w.dims);
      const m = w.dims[w.dims.length - 2]!;
      for (const [name, rank] of FITTED_INPUTS) {
        const x = inputs[name];
        if (!this.needs.fitted) {
          if (x !== undefined)
            throw new TypeError(`${fn}: ${name} is for 'fitted' FAVOR graphs only`);
          continue;
        }
        if (x === undefined) throw new TypeError(`${fn}: this 'fitted' graph needs ${name}`);
        const t = toInput(fn, name, x, rank);
        const want = rank === 4 ? [B, H, d, d] : [B, H, m];
        if (t.dims.join() !== want.join()) {
          throw new RangeError(`${fn}: ${name} [${t.dims}] must be [${want}]`);
        }
        feeds[name] = new this.ort.Tensor('float32', t.data, t.dims);
      }
    } else if (inputs.projection !== undefined) {
      throw new TypeError(`${fn}: exact attention takes no projection`);
    }
    if (this.needs.mask) {
      if (inputs.mask === undefined) throw new TypeError(`${fn}: this graph needs mask [B, Lk]`);
      const mask = toInput(fn, 'mask', inputs.mask, 2);
      if (mask.dims[0] !== B || mask.dims[1] !== k.dims[2]) {
        throw new RangeError(`${fn}: mask [${mask.dims}] must be [${B}, ${k.dims[2]}]`);
      }
      feeds.mask = new this.ort.Tensor('float32', mask.data, mask.dims);
    } else if (inputs.mask !== undefined) {
      throw new TypeError(`${fn}: this graph was built without a mask (build it with mask: true)`);
    }
    const result = await this.session.run(feeds);
    const out = result.out!;
    return { data: out.data as Float32Array, dims: [...out.dims] };
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
