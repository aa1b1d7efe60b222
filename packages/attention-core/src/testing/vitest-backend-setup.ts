// vitest setupFiles entry: registers tfjs's gradient functions (the tfjs-core Node bundle does not;
// the union package does, sharing the same tfjs-core instance) and starts the backend named by
// KA_BACKEND before any test file runs.
import '@tensorflow/tfjs';
import { requestedBackend, useBackend } from './backends.js';

await useBackend(requestedBackend());
