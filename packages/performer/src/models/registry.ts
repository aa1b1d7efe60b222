import { PerformerEncoder } from './performer-encoder/performer-encoder.js';
import { PerformerLM } from './performer-lm/performer-lm.js';
import { SoftmaxTransformer } from './softmax-transformer/softmax-transformer.js';

/** Model type → class (each `create(config, { seed })`s a fresh model). */
export const MODEL_TYPES = {
  'performer-lm': PerformerLM,
  'performer-encoder': PerformerEncoder,
  'softmax-transformer': SoftmaxTransformer,
} as const;

export type ModelType = keyof typeof MODEL_TYPES;
