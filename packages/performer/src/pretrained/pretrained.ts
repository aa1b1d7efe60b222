import { PerformerLM } from '../models/performer-lm/performer-lm.js';

/** The models shipped in the package's pretrained/ folder. */
export const PRETRAINED_MODELS = ['fortunes-performer'] as const;
export type PretrainedModelName = (typeof PRETRAINED_MODELS)[number];

// literal `new URL(…, import.meta.url)` expressions, so that bundlers (Vite, webpack 5) copy the files
const ASSETS: Record<PretrainedModelName, { weights: () => URL; heldOut: () => URL }> = {
  'fortunes-performer': {
    weights: () => new URL('../../pretrained/fortunes-performer.safetensors', import.meta.url),
    heldOut: () => new URL('../../pretrained/fortunes-heldout.txt', import.meta.url),
  },
};

function assetsOf(fn: string, name: unknown) {
  const assets = ASSETS[name as PretrainedModelName];
  if (typeof name !== 'string' || assets === undefined) {
    throw new RangeError(
      `${fn}: name must be one of ${PRETRAINED_MODELS.map((n) => `'${n}'`).join(', ')}, got ${JSON.stringify(name)}`,
    );
  }
  return assets;
}

/** The bytes at `url`: the file system in Node (file: URLs), fetch elsewhere. */
async function readAsset(url: URL): Promise<Uint8Array> {
  if (url.protocol === 'file:') {
    const spec = 'node:fs/promises'; // a variable: bundlers for the browser leave it alone
    const fs = (await import(/* @vite-ignore */ spec)) as {
      readFile(u: URL): Promise<Uint8Array>;
    };
    return new Uint8Array(await fs.readFile(url));
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`fetching ${url.href} failed: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Loads a pretrained model shipped with the package, in Node or in the browser (bundlers copy the
 * weights file next to your bundle). 'fortunes-performer': a character-level PerformerLM
 * (d_model 128, 4 layers, 4 heads, FAVOR+ with 128 positive features per head) trained on the
 * quotations of Debian's fortunes packages; tokens come from `charTokenizer`.
 *
 * @param name - a model of PRETRAINED_MODELS (default 'fortunes-performer')
 * @param opts - `{ url }`: where the weights are served, when not beside the package
 *
 * @example
 * ```ts
 * import { charTokenizer, loadPretrained } from '@kernel-attention/performer';
 * const model = await loadPretrained('fortunes-performer');
 * const prompt = charTokenizer.encode('The ');
 * const out = await model.generate([charTokenizer.boundary, ...prompt], { maxNewTokens: 40 });
 * console.log(charTokenizer.decode(out));
 * model.dispose();
 * ```
 */
export async function loadPretrained(
  name: PretrainedModelName = 'fortunes-performer',
  opts: PretrainedOptions = {},
): Promise<PerformerLM> {
  const assets = assetsOf('loadPretrained', name);
  return PerformerLM.fromSafetensors(await readAsset(urlOf(opts, assets.weights)));
}

export interface PretrainedOptions {
  /**
   * Where the file is, when your bundler does not copy the package's assets by itself: e.g. Vite's
   * `import url from '@kernel-attention/performer/pretrained/fortunes-performer.safetensors?url'`.
   */
  url?: string | URL;
}

function urlOf(opts: PretrainedOptions, fallback: () => URL): URL {
  if (opts === null || typeof opts !== 'object') {
    throw new TypeError(`options must be an object, got ${opts === null ? 'null' : typeof opts}`);
  }
  if (opts.url === undefined) return fallback();
  const base = (globalThis as { location?: { href: string } }).location?.href;
  return new URL(String(opts.url), base);
}

/**
 * Held-out documents of a pretrained model's corpus (never seen in training): for evaluation,
 * and the default text of `evaluateKernel`.
 *
 * @param name - a model of PRETRAINED_MODELS (default 'fortunes-performer')
 * @param opts - `{ url }`: where the text is served, when not beside the package
 */
export async function loadHeldOutDocuments(
  name: PretrainedModelName = 'fortunes-performer',
  opts: PretrainedOptions = {},
): Promise<string[]> {
  const assets = assetsOf('loadHeldOutDocuments', name);
  const text = new TextDecoder().decode(await readAsset(urlOf(opts, assets.heldOut)));
  return splitDocuments(text);
}

/**
 * Documents of a text in the fortune format: separated by lines holding only '%'.
 *
 * @param text - documents separated by lines holding only '%'
 */
export function splitDocuments(text: string): string[] {
  return text
    .replace(/\r\n/g, '\n')
    .split(/^%\n/m)
    .map((d) => d.replace(/\n+$/, ''))
    .filter((d) => d.trim().length > 0);
}
