/**
 * `pnpm bench:lm [experiment] [models…] [--steps N]`: the language-model experiments on the
 * fortunes corpus (run `pnpm data` first). Experiments: train (each model from scratch), speed
 * (training and inference tokens/s at L = 512 … 4096), swap (the trained Transformer run as a
 * Performer, then fine-tuned), attention (estimators on the trained Transformer's real attention),
 * publish (the best Performer to packages/performer/pretrained with its model card).
 * ngram: count-based reference points. Without an experiment, all of them in that order. Results: bench/results/lm-fortunes/.
 */
import '@tensorflow/tfjs'; // gradient functions (and the cpu backend)
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { attentionExperiment } from './attention.js';
import { ngramReference } from './ngram.js';
import { publishPretrained } from './publish.js';
import { speedCell, speedExperiment } from './speed.js';
import { swapExperiment } from './swap.js';
import { MODEL_NAMES, trainModel } from './train.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const steps = flag('--steps');
const [experiment = 'all', ...names] = args;
await tf.setBackend('wasm');
await tf.ready();

const run = async (what: string) => experiment === 'all' || experiment === what;
if (await run('ngram')) ngramReference();
if (await run('train')) {
  for (const name of names.length ? names : MODEL_NAMES) {
    await trainModel(name, steps ? Number(steps) : undefined);
  }
}
if (experiment === 'speed-cell') {
  console.log(JSON.stringify(await speedCell(names[0]!, Number(names[1]))));
}
if (await run('speed')) speedExperiment();
if (await run('swap')) await swapExperiment();
if (await run('attention')) await attentionExperiment();
if (await run('publish')) publishPretrained();
