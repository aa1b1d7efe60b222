import * as tf from '@tensorflow/tfjs-core';

/** The parts of `node:fs/promises` and `node:path` the handler uses. */
interface NodeFs {
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: string | Uint8Array): Promise<void>;
}
interface NodePath {
  join(...parts: string[]): string;
  dirname(path: string): string;
}

const FILE_SCHEME = 'file://';
const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

async function nodeModules(): Promise<{ fs: NodeFs; path: NodePath }> {
  const runtime = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!runtime?.versions?.node) {
    throw new Error(
      'fileSystem: reading and writing files needs Node.js; in a browser use tf.io.browserFiles, ' +
        "'indexeddb://' or 'localstorage://' instead",
    );
  }
  // variables, so that browser bundlers leave these Node-only modules alone
  const fsSpec = 'node:fs/promises';
  const pathSpec = 'node:path';
  const [fs, path] = await Promise.all([
    import(/* @vite-ignore */ fsSpec) as Promise<NodeFs>,
    import(/* @vite-ignore */ pathSpec) as Promise<NodePath>,
  ]);
  return { fs, path };
}

/** `dir` as a directory path: a `file://` prefix is dropped; a path ending in model.json names its directory. */
function directoryOf(dir: string, path: NodePath): string {
  const plain = dir.startsWith(FILE_SCHEME) ? dir.slice(FILE_SCHEME.length) : dir;
  return plain.endsWith(`/${MODEL_JSON}`) || plain === MODEL_JSON ? path.dirname(plain) : plain;
}

/**
 * A tf.io handler that saves a model to, and loads it from, a directory on the local file system
 * in Node — the same files tfjs-node's `file://` handler writes (`model.json` in the TensorFlow.js
 * layers format and one `weights.bin`), without needing tfjs-node. Works with any tfjs-layers
 * model (`model.save(fileSystem(dir))`, `tf.loadLayersModel(fileSystem(dir))`), on every backend.
 *
 * @param dir - the directory (created on save), as a path or a `file://` URL; a path ending in
 *   `/model.json` names the directory that holds it.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { fileSystem } from '@kernel-attention/performer';
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 *
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
 * const dir = join(mkdtempSync(join(tmpdir(), 'model-')), 'tiny');
 * await model.save(fileSystem(dir)); // writes tiny/model.json and tiny/weights.bin
 * const again = await tf.loadLayersModel(fileSystem(dir));
 * ```
 */
export function fileSystem(dir: string): tf.io.IOHandler {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new Error(
      `fileSystem: dir must be a non-empty string (a directory path or file:// URL), got ${
        typeof dir === 'string' ? 'an empty string' : dir === null ? 'null' : typeof dir
      }`,
    );
  }
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error(
          'fileSystem: saving a binary model topology is not supported (tfjs-layers models save JSON)',
        );
      }
      const { fs, path } = await nodeModules();
      const target = directoryOf(dir, path);
      await fs.mkdir(target, { recursive: true });
      const weights =
        artifacts.weightData === undefined
          ? new ArrayBuffer(0)
          : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata
          ? { userDefinedMetadata: artifacts.userDefinedMetadata }
          : {}),
      };
      await fs.writeFile(path.join(target, WEIGHTS_BIN), new Uint8Array(weights));
      await fs.writeFile(path.join(target, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      const { fs, path } = await nodeModules();
      const target = directoryOf(dir, path);
      const jsonPath = path.join(target, MODEL_JSON);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await fs.readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (err) {
        throw new Error(`fileSystem: cannot read ${jsonPath}: ${(err as Error).message}`);
      }
      if (modelJson === null || typeof modelJson !== 'object' || !modelJson.modelTopology) {
        throw new Error(`fileSystem: ${jsonPath} has no modelTopology (not a tfjs model.json)`);
      }
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: Uint8Array[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) buffers.push(await fs.readFile(path.join(target, p)));
        }
        const total = buffers.reduce((n, b) => n + b.byteLength, 0);
        const joined = new Uint8Array(total);
        let offset = 0;
        for (const b of buffers) {
          joined.set(b, offset);
          offset += b.byteLength;
        }
        return [specs, joined.buffer];
      });
    },
  };
}

let routersRegistered = false;

/**
 * Registers {@link fileSystem} for `file://` URLs with tf.io, so that `model.save('file://dir')`
 * and `tf.loadLayersModel('file://dir/model.json')` work in Node without tfjs-node. Idempotent;
 * does nothing when another handler (tfjs-node's) already answers `file://` URLs, since tf.io
 * refuses a URL that two handlers claim.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { registerFileSystemRouter } from '@kernel-attention/performer';
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 *
 * registerFileSystemRouter();
 * const dir = mkdtempSync(join(tmpdir(), 'model-'));
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
 * await model.save(`file://${dir}`);
 * await tf.loadLayersModel(`file://${dir}/model.json`);
 * ```
 */
export function registerFileSystemRouter(): void {
  if (routersRegistered || tf.io.getSaveHandlers(`${FILE_SCHEME}probe`).length > 0) return;
  routersRegistered = true;
  // tf.io's routers answer null for URLs they do not handle (its IORouter type says otherwise)
  const router = ((url: string | string[]) =>
    typeof url === 'string' && url.startsWith(FILE_SCHEME) ? fileSystem(url) : null) as (
    url: string | string[],
  ) => tf.io.IOHandler;
  tf.io.registerSaveRouter(router);
  tf.io.registerLoadRouter(router);
}
