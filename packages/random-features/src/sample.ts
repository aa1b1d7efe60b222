/**
 * The next token from a model's logits: the most likely one at temperature 0, else a draw from
 * softmax(logits / temperature) (among the topK most likely when given) with `rng`'s uniform —
 * the rule PerformerLM.generate and OnnxPerformerLM.generate share, so that one seed gives the same
 * text on either.
 *
 * @param logits - one row of logits
 * @param temperature - 0 for greedy, else the sampling temperature (> 0)
 * @param topK - sample among the k most likely entries only (undefined: all)
 * @param rng - the uniform source (e.g. createRng(seed))
 *
 * @example
 * ```ts
 * import { createRng, sampleLogits } from '@kernel-attention/random-features';
 * const logits = Float32Array.of(0.1, 2.5, -1);
 * sampleLogits(logits, 0, undefined, createRng(0)); // 1 (greedy)
 * sampleLogits(logits, 0.8, 2, createRng(7)); // 0 or 1
 * ```
 */
export function sampleLogits(
  logits: ArrayLike<number>,
  temperature: number,
  topK: number | undefined,
  rng: { uniform(): number },
): number {
  let order = Array.from({ length: logits.length }, (_, i) => i).sort(
    (a, b) => logits[b]! - logits[a]!,
  );
  if (temperature === 0) return order[0]!;
  if (topK !== undefined) order = order.slice(0, topK);
  const max = logits[order[0]!]!;
  const weights = order.map((i) => Math.exp((logits[i]! - max) / temperature));
  let u = rng.uniform() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < order.length; j++) {
    u -= weights[j]!;
    if (u <= 0) return order[j]!;
  }
  return order[order.length - 1]!;
}
