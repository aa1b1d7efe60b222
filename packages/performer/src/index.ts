/**
 * The Performer model zoo: `PerformerLM`, `PerformerEncoder`, `SoftmaxTransformer`, tfjs-layers
 * layers, training, performer-pytorch checkpoints and a pretrained character-level Performer.
 *
 * @module @kernel-attention/performer
 */

export {
  type Attend,
  type AttentionProjections,
  type AttentionSublayer,
  type BlockWeights,
  type HeadLayout,
  multiHeadAttention,
  type RotaryRows,
  sinusoids,
  transformerBlock,
} from './block/transformer-block.js';
export {
  type EvaluateKernelOptions,
  evaluateKernel,
  type HeadEvaluation,
  type KernelEvaluation,
  meanVisibleValues,
  relativeErrorPerHead,
} from './evaluate/evaluate-kernel.js';
export { fileSystem, registerFileSystemRouter } from './io/file-system.js';
export {
  PerformerAttention,
  type PerformerAttentionArgs,
  PerformerBlock,
  type PerformerBlockArgs,
  registerLayers,
} from './layers/performer-block.js';
export {
  PerformerEncoder,
  type PerformerEncoderConfig,
} from './models/performer-encoder/performer-encoder.js';
export type { PerformerLMConfig, ResolvedConfig } from './models/performer-lm/config.js';
export {
  type GenerateOptions,
  type LayerFeatureMap,
  type PerformerLayerWeights,
  PerformerLM,
  type PerformerLMWeights,
} from './models/performer-lm/performer-lm.js';
export { MODEL_TYPES, type ModelType } from './models/registry.js';
export { SoftmaxTransformer } from './models/softmax-transformer/softmax-transformer.js';
export {
  loadHeldOutDocuments,
  loadPretrained,
  PRETRAINED_MODELS,
  type PretrainedModelName,
  type PretrainedOptions,
  splitDocuments,
} from './pretrained/pretrained.js';
export {
  configFromPytorch,
  loadPerformerPytorch,
  type PerformerPytorchExport,
  toPerformerPytorch,
} from './pytorch.js';
export {
  MAX_HEADER_BYTES,
  readSafetensors,
  readSafetensorsMetadata,
  type SafetensorsDtype,
  type SafetensorsTensor,
  writeSafetensors,
} from './safetensors.js';
export { type CharTokenizer, charTokenizer, encodeDocuments } from './text/char-tokenizer.js';
export { type CopyTaskOptions, copyTaskBatch, weightedAccuracy } from './train/tasks.js';
export {
  type TrainBatch,
  type TrainCallbacks,
  type TrainLogs,
  type TrainOptions,
  train,
} from './train/trainer.js';
