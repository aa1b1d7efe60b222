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
  /** Standard deviation of the entries of q and k. */
  scale: number;
  help: boolean;
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
  help: false,
};

export const HELP = `ka-demo — FAVOR+ against exact softmax attention, over a range of lengths

Prints, for each length L: the relative error of FAVOR+'s output against exact attention, the
time of each (median of --runs), and the speed-up. Inputs are q, k ~ N(0, scale²), v ~ N(0, 1).
For scale, the error of the trivial baseline that predicts mean(v) for every query is shown too:
FAVOR+ (m = 256) beats it for scale ≈ 0.25–0.35 (see docs/guides/accuracy.md).

Usage: pnpm demo [options]

Options:
  --lengths <list|range>  lengths: a list "256,1024,4096" or a doubling range "256..4096"
                          (default 256..4096)
  --heads <n>             attention heads (default 8)
  --head-dim <n>          dimension per head d (default 64)
  --features <n>          random features m (default 256)
  --causal                causal (unidirectional) attention (default bidirectional)
  --backend <name>        wasm or cpu (default wasm)
  --seed <n>              seed of the inputs and of the random features (default 0)
  --batch <n>             batch size (default 1)
  --runs <n>              timed runs per measurement, the median is shown (default 3)
  --scale <x>             standard deviation of the entries of q and k (default 0.35)
  -h, --help              this help
`;

function positiveInt(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < 1) {
    throw new Error(
      `${flag} needs a positive integer, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`,
    );
  }
  return n;
}

export function parseLengths(text: string | undefined): number[] {
  if (text === undefined) throw new Error('--lengths needs a value, e.g. 256..4096 or 512,2048');
  const range = /^(\d+)\.\.(\d+)$/.exec(text);
  if (range) {
    const lo = positiveInt('--lengths', range[1]);
    const hi = positiveInt('--lengths', range[2]);
    if (hi < lo) throw new Error(`--lengths range must go up, got ${text}`);
    const out: number[] = [];
    for (let L = lo; L <= hi; L *= 2) out.push(L);
    return out;
  }
  return text.split(',').map((s) => positiveInt('--lengths', s.trim()));
}

export function parseArgs(argv: readonly string[]): DemoOptions {
  const o: DemoOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const next = () => argv[++i];
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
        const s = Number(next());
        if (!Number.isSafeInteger(s))
          throw new Error(`--seed needs an integer, got ${JSON.stringify(argv[i])}`);
        o.seed = s;
        break;
      }
      case '--batch':
        o.batch = positiveInt(flag, next());
        break;
      case '--runs':
        o.runs = positiveInt(flag, next());
        break;
      case '--scale': {
        const x = Number(next());
        if (!(Number.isFinite(x) && x > 0))
          throw new Error(`--scale needs a positive number, got ${JSON.stringify(argv[i])}`);
        o.scale = x;
        break;
      }
      default:
        throw new Error(`unknown option ${JSON.stringify(flag)} (see --help)`);
    }
  }
  return o;
}
