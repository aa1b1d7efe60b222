import { PerformerEncoder } from './performer-encoder/performer-encoder.js';
import { PerformerLM } from './performer-lm/performer-lm.js';

/**
 * Model type → class. The softmax Transformer baseline is PerformerLM with attention: 'softmax'
 * (or `withAttention('softmax')`), the same shapes and weights.
 */
export const MODEL_TYPES = {
  'performer-lm': PerformerLM,
  'performer-encoder': PerformerEncoder,
} as const;

export type ModelType = keyof typeof MODEL_TYPES;
