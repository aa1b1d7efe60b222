// Core's own run of the shared parity suite on the backend of this vitest project (KA_BACKEND).
import { requestedBackend, runParitySuite } from './testing/suites.js';

runParitySuite({ backend: requestedBackend() });
