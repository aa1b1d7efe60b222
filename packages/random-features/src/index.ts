/**
 * Seeded, splittable counter-based random numbers (Threefry-2x32) and the Gaussian random
 * projections of FAVOR+: IID and block-orthogonal, in Float64, with no tfjs dependency.
 *
 * @module @kernel-attention/random-features
 */
export { detLog } from './log.js';
export { type Matrix, multiplyTransposed, rowSlice, zeros } from './matrix.js';
export { orthogonalFactor } from './qr.js';
export { type RedrawSchedule, type RedrawScheduleOptions, redrawSchedule } from './redraw.js';
export { createRng, type Rng, rngFrom } from './rng.js';
export { sampleLogits } from './sample.js';
export {
  gaussianIid,
  gaussianOrthogonal,
  type OrthogonalOptions,
  type RandomSource,
  type RowScaling,
} from './samplers.js';
export { threefry2x32 } from './threefry.js';
