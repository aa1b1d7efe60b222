/**
 * Ships the best trained Performer of experiment 1 as the pretrained 'fortunes-performer': its
 * weights, the held-out validation documents (the corpus slice the tests use) and a model card,
 * to packages/performer/pretrained/. Writes bench/results/lm-fortunes/pretrained.json.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformerLM } from '@kernel-attention/performer';
import * as tf from '@tensorflow/tfjs-core';
import { bitsPerChar, CHECKPOINTS, readResults, TRAIN, windows, writeResults } from './common.js';
import { DATA_DIR, SOURCE } from './data.js';
import type { CurvePoint } from './train.js';

const PRETRAINED = fileURLToPath(
  new URL('../../../packages/performer/pretrained/', import.meta.url),
);

interface TrainResult {
  model: string;
  config: Record<string, unknown>;
  curve: CurvePoint[];
  seconds?: number;
  otherCoresDuringRun?: number | null;
  done: boolean;
}

export function publishPretrained(): void {
  const candidates = ['favor-positive', 'favor-hyperbolic']
    .map((name) => readResults<TrainResult>(`train-${name}`))
    .filter((r): r is TrainResult => r?.done === true);
  // the Transformer converted to FAVOR+ and fine-tuned (experiment 2) is a candidate too
  const swap = readResults<{ curve: CurvePoint[]; fineTune: { steps: number } }>('swap');
  const transformer = readResults<TrainResult>('train-transformer');
  if (swap && transformer?.done && swap.curve.at(-1)?.step === swap.fineTune.steps) {
    candidates.push({
      ...transformer,
      model: 'transformer-to-favor',
      config: { ...transformer.config, attention: 'favor' },
      curve: swap.curve,
    });
  }
  if (candidates.length === 0) throw new Error('no finished FAVOR+ training run to publish');
  const best = candidates.sort(
    (a, b) => a.curve.at(-1)!.validationBpc - b.curve.at(-1)!.validationBpc,
  )[0]!;
  const file = join(CHECKPOINTS, `${best.model}.safetensors`);
  const model = PerformerLM.fromSafetensors(readFileSync(file));
  const validation = bitsPerChar(model, windows('validation', TRAIN.length));
  const test = bitsPerChar(model, windows('test', TRAIN.length));
  const parameters = model.trainableVariables().reduce((n, v) => n + v.size, 0);
  model.dispose();
  mkdirSync(PRETRAINED, { recursive: true });
  copyFileSync(file, join(PRETRAINED, 'fortunes-performer.safetensors'));
  copyFileSync(join(DATA_DIR, 'validation.txt'), join(PRETRAINED, 'fortunes-heldout.txt'));
  const meta = JSON.parse(readFileSync(join(DATA_DIR, 'meta.json'), 'utf8')) as {
    documents: Record<string, number>;
    characters: Record<string, number>;
  };
  const converted = best.model === 'transformer-to-favor';
  const history = converted
    ? `Trained as a softmax Transformer (exact attention, the same shapes) for ${TRAIN.steps} steps, then run with FAVOR+ attention on the same weights and fine-tuned for ${swap!.fineTune.steps} steps at learning rate ${TRAIN.learningRate / 4} — the paper's backwards-compatible route, which gave a lower validation loss here than training with FAVOR+ from scratch for the same steps (see the real-data page).`
    : `Trained from scratch with FAVOR+ attention for ${TRAIN.steps} steps.`;
  const reproduce = converted
    ? 'pnpm data && pnpm bench:lm train transformer && pnpm bench:lm swap'
    : `pnpm data && pnpm bench:lm train ${best.model}`;
  const card = {
    name: 'fortunes-performer',
    trainedAs: best.model,
    history,
    reproduce,
    config: { ...best.config, attention: 'favor' },
    parameters,
    bitsPerChar: { validation, test },
    training: {
      ...TRAIN,
      seconds: best.seconds ?? null,
      otherCoresDuringRun: best.otherCoresDuringRun ?? null,
      machine: '2-core x86-64 Linux machine, tfjs-backend-wasm in Node (one thread), no GPU',
      backend: tf.getBackend(),
    },
    data: { ...SOURCE, documents: meta.documents, characters: meta.characters },
  };
  writeResults('pretrained', card);
  writeFileSync(join(PRETRAINED, 'fortunes-performer.md'), modelCard(card));
  console.log(
    `published ${best.model}: validation ${validation.toFixed(3)} bpc, test ${test.toFixed(3)} bpc`,
  );
}

function modelCard(c: {
  trainedAs: string;
  history: string;
  reproduce: string;
  config: Record<string, unknown>;
  parameters: number;
  bitsPerChar: { validation: number; test: number };
  training: typeof TRAIN & { seconds: number | null; machine: string };
  data: typeof SOURCE & { documents: Record<string, number>; characters: Record<string, number> };
}): string {
  const cfg = c.config;
  const minutes =
    c.training.seconds === null
      ? 'the training time was not recorded'
      : `${(c.training.seconds / 60).toFixed(0)} minutes of wall time`;
  return `# fortunes-performer

A small character-level Performer language model, trained on real English text so
that the library's examples, playground and kernel evaluations run on real attention.

| | |
|---|---|
| Architecture | PerformerLM: ${cfg.depth} layers, d_model ${cfg.dim}, ${cfg.heads} heads of ${cfg.dimHead}, feed-forward ×${cfg.ffMult}, rotary positions, pre-norm, causal |
| Attention | FAVOR+ with ${cfg.kernel} random features (${cfg.nbFeatures} per head, orthogonal${c.trainedAs === 'transformer-to-favor' ? ', fixed during the fine-tune' : `, redrawn every ${c.training.redrawEvery} training steps`}), exactly causal stabilizers |
| Parameters | ${c.parameters.toLocaleString('en-US')} (float32) |
| Vocabulary | \`charTokenizer\`: 99 tokens (printable ASCII, tab, newline, document boundary, other) |
| Context | trained on windows of ${c.training.length} characters; maxSeqLen ${cfg.maxSeqLen} |
| Validation | ${c.bitsPerChar.validation.toFixed(3)} bits per character (all ${c.data.characters.validation.toLocaleString('en-US')} characters of the validation split) |
| Test | ${c.bitsPerChar.test.toFixed(3)} bits per character (the test split, never used for any choice) |

## Data

The quotations of Debian's \`fortunes\` and \`fortunes-min\` packages, version ${c.data.packages[0]!.version}
(${c.data.distribution}); license: ${c.data.license}. Each quotation is a document; documents go to
train / validation / test by a hash of their text (90 / 5 / 5 %, exact duplicates dropped):
${c.data.documents.train} / ${c.data.documents.validation} / ${c.data.documents.test} documents,
${c.data.characters.train.toLocaleString('en-US')} / ${c.data.characters.validation.toLocaleString('en-US')} / ${c.data.characters.test.toLocaleString('en-US')} characters. \`pnpm data\` rebuilds
the corpus from the Debian packages (checked by SHA-256). The validation documents ship with the
package as \`fortunes-heldout.txt\` (\`loadHeldOutDocuments()\`).

The corpus is a collection of jokes and quotations from decades of Unix systems; some are dated
or crude, and the model reproduces their style. It is a research and demonstration model, not
a product.

## Training

${c.history}

${c.trainedAs === 'transformer-to-favor' ? 'The Transformer' : 'Training'}: Adam, learning rate ${c.training.learningRate}, ${c.training.steps} steps of ${c.training.batch} random windows of
${c.training.length} characters (${(c.training.steps * c.training.batch * c.training.length).toLocaleString('en-US')} characters seen, about
${((c.training.steps * c.training.batch * c.training.length) / c.data.characters.train).toFixed(2)} epochs), seed ${c.training.seed}; ${minutes} on a
${c.training.machine}, sharing its two cores with the other training runs. Reproduce with \`${c.reproduce}\`, then \`pnpm bench:lm publish\`.

## Use

\`\`\`ts
import { charTokenizer, loadPretrained } from '@kernel-attention/performer';
const model = await loadPretrained('fortunes-performer');
const prompt = [charTokenizer.boundary, ...charTokenizer.encode('Life is ')];
const out = await model.generate(prompt, { maxNewTokens: 80, temperature: 0.8, seed: 1 });
console.log(charTokenizer.decode(out.slice(1)));
model.dispose();
\`\`\`
`;
}
