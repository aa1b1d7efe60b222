/** Options of the demo, parsed from argv (no dependencies: a tiny, strict parser). */
export interface DemoOptions {
  lengths: number[];
  heads: number;
  headDim: number;
  features: number;
  causal: boolean;
  backend: 'wasm' | 'cpu';
  seed: number;
  batch: number;
  runs: number;
  /** Standard deviation of the entries of q and k (Gaussian inputs). */
  scale: number;
  /**
   * 'text' (default): q, k, v of one layer of the pretrained fortunes Performer on held-out text —
   * real attention (4 heads of 32); 'gaussian': q, k ~ N(0, scale²), v ~ N(0, 1).
   */
  inputs: 'text' | 'gaussian';
  /** The pretrained model's layer whose attention inputs are used (text inputs). */
  layer: number;
  help: boolean;
  /** Flags given on the command line (to tell a default from a choice). */
  given: string[];
}

export const DEFAULTS: DemoOptions = {
  lengths: [256, 512, 1024, 2048, 4096],
  heads: 8,
  headDim: 64,
  features: 256,
  causal: false,
  backend: 'wasm',
  seed: 0,
  batch: 1,
  runs: 3,
  scale: 0.35,
  inputs: 'text',
  layer: 1,
  help: false,
  given: [],
};

/** Flags that shape Gaussian inputs only. */
export const GAUSSIAN_ONLY = ['--heads', '--head-dim', '--scale', '--batch'] as const;

export const HELP = `ka-demo — FAVOR+ against exact softmax attention, over a range of lengths

Prints, for each length L: the relative error of FAVOR+'s output against exact attention, the
time of each (median of --runs), and the speed-up, next to the error of the trivial estimator
that predicts mean(v) for every query. By default the inputs are real attention: the q, k, v of
one layer of the pretrained fortunes Performer (4 heads of 32) on held-out text (consecutive
windows of its 1024-character context for longer L). With --inputs gaussian they are
q, k ~ N(0, scale²), v ~ N(0, 1) instead: nearly uniform attention, where mean(v) is already close.

Usage: pnpm demo [options]

Options:
  --lengths <list|range>  lengths: a list "256,1024,4096" or a doubling range "256..4096"
                          (default 256..4096; each at most 16384, at most 16 lengths)
  --heads <n>             attention heads (default 8, at most 64)
  --head-dim <n>          dimension per head d (default 64, at most 1024)
  --features <n>          random features m (default 256, at most 8192)
  --causal                causal (unidirectional) attention (default bidirectional)
  --backend <name>        wasm or cpu (default wasm)
  --seed <n>              integer seed of the inputs and of the random features (default 0)
  --batch <n>             batch size (default 1, at most 64)
  --runs <n>              timed runs per measurement, the median is shown (default 3, at most 100)
  --scale <x>             standard deviation of the entries of q and k (default 0.35, at most 1000)
  --inputs <text|gaussian>  real attention of the pretrained model (default) or Gaussian inputs;
                          --heads, --head-dim, --batch and --scale apply to gaussian only
  --layer <n>             the pretrained model's layer, 0 to 3 (default 1; text inputs)
  -h, --help              this help

Together, batch × heads × the longest length × max(head-dim, features) may not exceed 2^27
(512 MiB of float32 per tensor).
`;

/**
 * The largest value each flag accepts. The exact attention the demo times is O(L²) per head, and
 * every tensor must fit a 32-bit index, so the bounds keep one run within minutes and memory.
 */
export const LIMITS = {
  '--lengths': 16384,
  '--heads': 64,
  '--head-dim': 1024,
  '--features': 8192,
  '--batch': 64,
  '--runs': 100,
  '--scale': 1000,
} as const;

/** Most lengths one run measures. */
export const MAX_LENGTHS = 16;

/** Most float32 values in one input tensor or feature tensor (512 MiB). */
export const MAX_TENSOR_VALUES = 2 ** 27;

function quoted(value: string | undefined): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/** A decimal integer in [1, LIMITS[flag]]; anything else (1e12, 0x10, 2**60, '') is an error. */
function positiveInt(flag: keyof typeof LIMITS, value: string | undefined): number {
  const max = LIMITS[flag];
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1) {
    throw new Error(`${flag} needs a positive integer (at most ${max}), got ${quoted(value)}`);
  }
  const n = Number(value);
  if (n > max) throw new Error(`${flag} must be at most ${max}, got ${value}`);
  return n;
}

export function parseLengths(text: string | undefined): number[] {
  if (text === undefined) throw new Error('--lengths needs a value, e.g. 256..4096 or 512,2048');
  const range = /^(\d+)\.\.(\d+)$/.exec(text);
  let out: number[];
  if (range) {
    const lo = positiveInt('--lengths', range[1]);
    const hi = positiveInt('--lengths', range[2]);
    if (hi < lo) throw new Error(`--lengths range must go up, got ${text}`);
    out = [];
    for (let L = lo; L <= hi; L *= 2) out.push(L);
  } else {
    out = text.split(',').map((s) => positiveInt('--lengths', s.trim()));
  }
  if (out.length > MAX_LENGTHS) {
    throw new Error(`--lengths may list at most ${MAX_LENGTHS} lengths, got ${out.length}`);
  }
  return out;
}

export function parseArgs(argv: readonly string[]): DemoOptions {
  const o: DemoOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const next = () => argv[++i];
    if (flag.startsWith('--')) o.given = [...o.given, flag];
    switch (flag) {
      case '--':
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      case '--lengths':
        o.lengths = parseLengths(next());
        break;
      case '--heads':
        o.heads = positiveInt(flag, next());
        break;
      case '--head-dim':
        o.headDim = positiveInt(flag, next());
        break;
      case '--features':
        o.features = positiveInt(flag, next());
        break;
      case '--causal':
        o.causal = true;
        break;
      case '--backend': {
        const b = next();
        if (b !== 'wasm' && b !== 'cpu')
          throw new Error(`--backend must be wasm or cpu, got ${JSON.stringify(b)}`);
        o.backend = b;
        break;
      }
      case '--seed': {
        const text = next();
        if (text === undefined || !/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
          throw new Error(
            `--seed needs an integer between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}, got ${quoted(text)}`,
          );
        }
        o.seed = Number(text);
        break;
      }
      case '--batch':
        o.batch = positiveInt(flag, next());
        break;
      case '--runs':
        o.runs = positiveInt(flag, next());
        break;
      case '--scale': {
        const text = next();
        const x = Number(text);
        const max = LIMITS['--scale'];
        if (text === undefined || text.trim() === '' || !(Number.isFinite(x) && x > 0)) {
          throw new Error(`--scale needs a positive number (at most ${max}), got ${quoted(text)}`);
        }
        if (x > max) {
          throw new Error(
            `--scale must be at most ${max} (beyond it q·k leaves float32's range), got ${text}`,
          );
        }
        o.scale = x;
        break;
      }
      case '--inputs': {
        const v = next();
        if (v !== 'text' && v !== 'gaussian')
          throw new Error(`--inputs must be text or gaussian, got ${quoted(v)}`);
        o.inputs = v;
        break;
      }
      case '--layer': {
        const v = next();
        if (v === undefined || !/^[0-3]$/.test(v))
          throw new Error(`--layer must be 0, 1, 2 or 3, got ${quoted(v)}`);
        o.layer = Number(v);
        break;
      }
      default:
        throw new Error(`unknown option ${JSON.stringify(flag)} (see --help)`);
    }
  }
  if (o.inputs === 'text') {
    const misplaced = GAUSSIAN_ONLY.filter((f) => o.given.includes(f));
    if (misplaced.length > 0) {
      throw new Error(
        `${misplaced.join(', ')} shape Gaussian inputs: add --inputs gaussian (text inputs are the pretrained model's 4 heads of 32)`,
      );
    }
    o.heads = 4;
    o.headDim = 32;
    o.batch = 1;
  }
  const longest = Math.max(...o.lengths);
  const values = o.batch * o.heads * longest * Math.max(o.headDim, o.features);
  if (values > MAX_TENSOR_VALUES) {
    throw new Error(
      `--batch × --heads × the longest length × max(--head-dim, --features) = ${o.batch} × ${o.heads} × ${longest} × ${Math.max(o.headDim, o.features)} = ${values} float32 values per tensor, more than the ${MAX_TENSOR_VALUES} (512 MiB) a run may use`,
    );
  }
  return o;
}
