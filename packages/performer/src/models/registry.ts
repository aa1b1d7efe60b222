import { PerformerLM } from './performer-lm/performer-lm.js';

/** Model type → class. Grows with the zoo (encoder, softmax Transformer baseline). */
export const MODEL_TYPES = {
  'performer-lm': PerformerLM,
} as const;

export type ModelType = keyof typeof MODEL_TYPES;
