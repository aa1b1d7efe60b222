/**
 * A PerformerLM on ONNX Runtime: logits of whole sequences, and generation that runs the prompt
 * once (prefill) and then one constant-work step per new token on the recurrent state.
 */
import { createRng, sampleLogits } from '@kernel-attention/random-features';
import {
  type PerformerLMLike,
  performerLMModel,
  performerLMStepModel,
  stateNames,
} from './performer-lm.js';
import { type OnnxAttentionOptions, type OrtModule, runtimeFor } from './runner.js';

interface Session {
  run(
    feeds: Record<string, unknown>,
  ): Promise<Record<string, { data: unknown; dims: readonly number[] }>>;
  release(): Promise<void>;
}
type Int64Tensor = new (type: 'int64', data: BigInt64Array, dims: readonly number[]) => unknown;

/** Options of {@link OnnxPerformerLM.generate}, as PerformerLM.generate's. */
export interface OnnxGenerateOptions {
  /** How many tokens to add (fewer if the context fills up). */
  maxNewTokens: number;
  /** 0 (default): greedy; otherwise sampling at this temperature. */
  temperature?: number;
  /** Sample among the k most likely tokens only. */
  topK?: number;
  /** Seed of the sampling (our PRNG: the same sequence as PerformerLM.generate draws). */
  seed?: number;
  /** Called with every new token and the logits it was drawn from. */
  onToken?: (token: number, logits: Float32Array) => void;
}

/**
 * A causal PerformerLM exported to ONNX (prefill and step graphs) in two ONNX Runtime sessions.
 *
 * @example
 * ```ts
 * import { OnnxPerformerLM } from '@kernel-attention/onnx';
 * import { charTokenizer, loadPretrained } from '@kernel-attention/performer';
 *
 * const model = await loadPretrained('fortunes-performer');
 * const lm = await OnnxPerformerLM.create(model);
 * const prompt = [charTokenizer.boundary, ...charTokenizer.encode('A fool ')];
 * const tokens = await lm.generate(prompt, { maxNewTokens: 40, temperature: 0.8, seed: 1 });
 * console.log(charTokenizer.decode(tokens.slice(1)));
 * await lm.release();
 * model.dispose();
 * ```
 */
export class OnnxPerformerLM {
  private constructor(
    private readonly ort: OrtModule,
    private readonly prefill: Session,
    private readonly stepper: Session,
    private readonly depth: number,
    private readonly maxSeqLen: number,
    private readonly numTokens: number,
  ) {}

  /**
   * Exports `model` and opens the sessions.
   *
   * @param model - a causal PerformerLM (see performerLMModel for what is supported)
   * @param opts - the runtime and session options
   */
  static async create(
    model: PerformerLMLike,
    opts: OnnxAttentionOptions = {},
  ): Promise<OnnxPerformerLM> {
    const step = performerLMStepModel(model); // checks the model first (causal, supported)
    const full = performerLMModel(model);
    const { ort, sessionOptions: options } = await runtimeFor(opts);
    const [prefill, stepper] = (await Promise.all([
      ort.InferenceSession.create(full, options),
      ort.InferenceSession.create(step, options),
    ])) as unknown as [Session, Session];
    const c = model.config;
    return new OnnxPerformerLM(ort, prefill, stepper, c.depth, c.maxSeqLen, c.numTokens);
  }

  private ids(values: number[], dims: number[]): unknown {
    const T = this.ort.Tensor as unknown as Int64Tensor;
    return new T('int64', BigInt64Array.from(values.map((v) => BigInt(v))), dims);
  }

  /**
   * Logits [B, N, numTokens] (flat, row-major) of token ids [B][N].
   *
   * @param tokens - token ids [B][N]
   */
  async logits(tokens: number[][]): Promise<Float32Array> {
    const out = await this.prefill.run({
      tokens: this.ids(tokens.flat(), [tokens.length, tokens[0]?.length ?? 0]),
    });
    return out.logits!.data as Float32Array;
  }

  /**
   * Continues `prompt` (token ids): the prompt in one prefill pass, then one step per new token.
   * Greedy at temperature 0; seeded sampling otherwise, with PerformerLM.generate's rule.
   *
   * @param prompt - the prompt's token ids (at least one)
   * @param opts - `{ maxNewTokens, temperature, topK, seed, onToken }`
   */
  async generate(prompt: number[], opts: OnnxGenerateOptions): Promise<number[]> {
    const fn = 'OnnxPerformerLM.generate';
    if (!Array.isArray(prompt) || prompt.length === 0 || prompt.length > this.maxSeqLen) {
      throw new RangeError(`${fn}: prompt must hold 1 to ${this.maxSeqLen} token ids`);
    }
    const { maxNewTokens, temperature = 0, topK, seed = 0 } = opts ?? ({} as OnnxGenerateOptions);
    if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 0)) {
      throw new RangeError(
        `${fn}: maxNewTokens must be an integer >= 0, got ${String(maxNewTokens)}`,
      );
    }
    const rng = createRng(seed);
    const V = this.numTokens;
    const first = await this.prefill.run({ tokens: this.ids(prompt, [1, prompt.length]) });
    let logits: Float32Array = (first.logits!.data as Float32Array).slice(
      (prompt.length - 1) * V,
      prompt.length * V,
    );
    let state: Record<string, unknown> = {};
    for (let i = 0; i < this.depth; i++) {
      for (const name of Object.values(stateNames(i))) state[name] = first[name];
    }
    const out = [...prompt];
    while (out.length - prompt.length < maxNewTokens && out.length < this.maxSeqLen) {
      const next = sampleLogits(logits, temperature, topK, rng);
      out.push(next);
      opts.onToken?.(next, logits);
      if (out.length - prompt.length >= maxNewTokens || out.length >= this.maxSeqLen) break;
      const r = await this.stepper.run({
        token: this.ids([next], [1, 1]),
        position: this.ids([out.length - 1], [1]),
        ...state,
      });
      logits = r.logits!.data as Float32Array;
      state = {};
      for (let i = 0; i < this.depth; i++) {
        for (const name of Object.values(stateNames(i))) state[name] = r[`${name}_next`];
      }
    }
    return out;
  }

  /** Frees the sessions. */
  async release(): Promise<void> {
    await Promise.all([this.prefill.release(), this.stepper.release()]);
  }
}
