import type { PerformerLMConfig } from '../performer-lm/config.js';
import { PerformerLM } from '../performer-lm/performer-lm.js';

/**
 * The plain softmax Transformer of the same shapes as a PerformerLM, for comparison: the same
 * class and weights layout with exact softmax attention (config.attention = 'softmax'), so its
 * weights load into a Performer with `withAttention('favor')` (the paper's Fig. 5).
 */
export const SoftmaxTransformer = {
  create(config: Omit<PerformerLMConfig, 'attention'>, opts: { seed?: number } = {}): PerformerLM {
    return PerformerLM.create({ ...config, attention: 'softmax' }, opts);
  },
};
