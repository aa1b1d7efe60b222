/**
 * Reference points for the learning curves: count-based character n-gram models of the training
 * split (add-0.1 smoothing), scored on the validation split in bits per character — what a model
 * gets from the previous 0, 1 or 2 characters alone. Writes bench/results/lm-fortunes/ngram.json.
 */
import { encodeDocuments } from '@kernel-attention/performer';
import { writeResults } from './common.js';
import { readSplit } from './data.js';

export function ngramReference(orders = [0, 1, 2], alpha = 0.1): void {
  const train = encodeDocuments(readSplit('train'));
  const validation = encodeDocuments(readSplit('validation'));
  const V = 99;
  const results = orders.map((order) => {
    const context = (s: Int32Array, i: number) => {
      let c = 0;
      for (let j = 1; j <= order; j++) c = c * V + (i - j >= 0 ? s[i - j]! : 0);
      return c;
    };
    const counts = new Map<number, Float64Array>();
    for (let i = 0; i < train.length; i++) {
      const c = context(train, i);
      let row = counts.get(c);
      if (!row) {
        row = new Float64Array(V + 1);
        counts.set(c, row);
      }
      row[train[i]!]!++;
      row[V]!++;
    }
    let bits = 0;
    for (let i = 1; i < validation.length; i++) {
      const row = counts.get(context(validation, i));
      const p = row ? (row[validation[i]!]! + alpha) / (row[V]! + alpha * V) : 1 / V;
      bits -= Math.log2(p);
    }
    return { order, contextCharacters: order, validationBpc: bits / (validation.length - 1) };
  });
  writeResults('ngram', {
    setup: `character n-gram counts of the training split, add-${alpha} smoothing, validation split`,
    results,
  });
  console.log(results.map((r) => `${r.order}: ${r.validationBpc.toFixed(3)}`).join(', '));
}
