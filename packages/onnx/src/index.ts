/**
 * Attention as standard ONNX graphs, run on ONNX Runtime: exact softmax attention and FAVOR+
 * (positive and hyperbolic features, the projection a graph input) with the mathematics of
 * `@kernel-attention/core`, for speed and for serving.
 *
 * @module @kernel-attention/onnx
 */
export {
  type ExactAttentionGraphOptions,
  exactAttentionModel,
  type FavorAttentionGraphOptions,
  favorAttentionModel,
  type OnnxFeatureMap,
} from './attention-graphs.js';
export { type FittedFavorInputs, runFittedFavor } from './fitted.js';
export { type OnnxGenerateOptions, OnnxPerformerLM } from './generate.js';
export { type AttributeValue, type Dim, GraphBuilder, OPSET } from './graph.js';
export {
  type PerformerEncoderLike,
  type PerformerLMLike,
  performerEncoderModel,
  performerLMModel,
  performerLMStepModel,
  stateNames,
} from './performer-lm.js';
export {
  loadOnnxRuntime,
  OnnxAttention,
  type OnnxAttentionInputs,
  type OnnxAttentionOptions,
  type OrtModule,
  type TensorInput,
  type TensorOutput,
} from './runner.js';
export { loadOnnxRuntimeWeb, type OnnxRuntimeWeb, type OnnxRuntimeWebOptions } from './web.js';
