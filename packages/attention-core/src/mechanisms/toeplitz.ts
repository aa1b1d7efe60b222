import {
  assertOptions,
  assertTensor,
  backendCapabilities,
  backendsWith,
  matMul,
  shapeString,
} from '@kernel-attention/feature-maps';
import * as tf from '@tensorflow/tfjs-core';
import { fft, fftPlan, nextPowerOfTwo } from './fft.js';

/** How toeplitzMatmul multiplies: circulant embedding and FFT, or the dense L×L matrix. */
export type ToeplitzMethod = 'fft' | 'toeplitz';

export interface ToeplitzOptions {
  /** Default: defaultToeplitzMethod(L) for the active backend. */
  method?: ToeplitzMethod;
}

/** Below this length the dense product is cheaper than the FFT on the CPU backends. */
export const FFT_MIN_LENGTH = 64;

/**
 * Throws unless the active backend keeps its data on the host, where the Float64 FFT runs.
 *
 * @param fn - the calling op's name, for the message
 */
export function assertHostFft(fn: string): void {
  if (!backendCapabilities().hostFft) {
    throw new Error(
      `${fn}: method 'fft' runs on the CPU side and needs the ${backendsWith('hostFft').join(' or ')} backend, got '${tf.getBackend()}' (use method 'toeplitz', the default there)`,
    );
  }
}

/**
 * The default method for sequences of `length` on `backend`: the FFT on cpu and wasm (our
 * Float64 FFT runs on the CPU side; tfjs-wasm has no FFT kernel) from FFT_MIN_LENGTH on, the
 * dense product on the GPU backends (tfjs's FFT there is a naive DFT, and reading the data back
 * for ours would cost more than the matmul) and for short sequences.
 *
 * @param length - the sequence length L
 * @param backend - the tfjs backend name
 */
export function defaultToeplitzMethod(
  length: number,
  backend: string = tf.getBackend(),
): ToeplitzMethod {
  return backendCapabilities(backend).hostFft && length >= FFT_MIN_LENGTH ? 'fft' : 'toeplitz';
}

/**
 * y = C·x for the Toeplitz matrices C_ij = c_{j−i}: (C x)_i = Σ_j c_{j−i} x_j, with offset
 * r = j − i stored at index r + L − 1 of c's last axis.
 *
 * c [..., 2L−1], x [..., L, n]; leading dimensions broadcast (e.g. c [H, 2L−1] with
 * x [B, H, L, n]) → [...broadcast, L, n]. 'fft' embeds C in a circulant of power-of-two size
 * P ≥ 2L − 1 and multiplies in O(P log P) per column (two real columns per complex FFT, Float64);
 * 'toeplitz' builds C [L, L] and uses one matmul. Both have gradients for c and x (tf.customGrad:
 * the adjoint of a Toeplitz product is the Toeplitz product with c reversed, and ∂c is a
 * correlation — by FFT, or the diagonal sums of dy·xᵀ).
 *
 * @param c - the Toeplitz coefficients [..., 2L − 1]: c[j − i + L − 1] is entry (i, j)
 * @param x - the matrix to multiply [..., L, n]
 * @param opts - `{ method }`: 'fft' or 'toeplitz' (default by length and backend)
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { toeplitzMatmul } from '@kernel-attention/core';
 * const c = tf.tensor1d([0, 0, 1, 2, 3]); // L = 3: c_{-2}, c_{-1}, c_0, c_1, c_2
 * const x = tf.ones([3, 1]);
 * toeplitzMatmul(c, x).print(); // [[6], [3], [1]]: row i sums c_{j−i} over j
 * ```
 */
export function toeplitzMatmul(c: tf.Tensor, x: tf.Tensor, opts: ToeplitzOptions = {}): tf.Tensor {
  const fn = 'toeplitzMatmul';
  assertOptions(fn, opts, '{ method? }', false);
  assertTensor(fn, 'x', x, { rank: [2, 99], dtype: 'float32' }, '[..., length, columns]');
  assertTensor(fn, 'c', c, { rank: [1, 99], dtype: 'float32' }, '[..., 2·length − 1]');
  const L = x.shape[x.rank - 2]!;
  const n = x.shape[x.rank - 1]!;
  const W = c.shape[c.rank - 1]!;
  if (L === 0 || n === 0) {
    throw new RangeError(`${fn}: x must not be empty, got shape ${shapeString(x.shape)}`);
  }
  if (W !== 2 * L - 1) {
    throw new RangeError(
      `${fn}: c must have last dimension 2L − 1 = ${2 * L - 1} for x of length L = ${L}, got c ${shapeString(c.shape)} and x ${shapeString(x.shape)}`,
    );
  }
  const method = opts.method ?? defaultToeplitzMethod(L);
  if (method !== 'fft' && method !== 'toeplitz') {
    throw new RangeError(
      `${fn}: method must be 'fft' or 'toeplitz', got ${JSON.stringify(method)}`,
    );
  }
  if (method === 'fft') assertHostFft(fn);
  let lead: number[];
  try {
    lead = tf.backend_util.assertAndGetBroadcastShape(c.shape.slice(0, -1), x.shape.slice(0, -2));
  } catch {
    throw new RangeError(
      `${fn}: the leading dimensions of c and x must broadcast, got c ${shapeString(c.shape)} and x ${shapeString(x.shape)}`,
    );
  }
  const N = lead.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    const c2 = tf.reshape(tf.broadcastTo(c, [...lead, W]), [N, W]) as tf.Tensor2D;
    const x3 = tf.reshape(tf.broadcastTo(x, [...lead, L, n]), [N, L, n]) as tf.Tensor3D;
    const y = method === 'fft' ? fftProduct(c2, x3) : denseProduct(c2, x3);
    return tf.reshape(y, [...lead, L, n]);
  });
}

/** c [N, 2L−1] → c reversed along its last axis (the adjoint's coefficients: c'_r = c_{−r}). */
function reverseLast(c: tf.Tensor2D): tf.Tensor2D {
  return tf.reverse(c, 1);
}

/**
 * The dense Toeplitz matrices C [N, L, L], C_ij = c[j − i + L − 1], from shifted copies of c.
 *
 * @param c - the coefficients [..., 2L − 1]
 * @param L - the size L of the L×L matrix
 */
export function toeplitzMatrix(c: tf.Tensor2D, L: number): tf.Tensor3D {
  return toeplitzBlock(c, L, L);
}

/**
 * Rectangular Toeplitz blocks [N, R, K] with entry (i, j) = c[j − i + R − 1] for c [N, R + K − 1]
 * (differentiable: tiles, reshapes and slices only — no gather, which tfjs-wasm cannot
 * differentiate).
 */
export function toeplitzBlock(c: tf.Tensor2D, R: number, K: number): tf.Tensor3D {
  const [N, W] = c.shape;
  if (R === 1) return tf.reshape(tf.slice(c, [0, 0], [N, K]), [N, 1, K]);
  return tf.tidy(() => {
    // R copies of [c, 0] (width W + 1), re-read with row width W: row i starts i entries later in
    // the copies, so its entry k is c[k − i]; columns R − 1 … R + K − 2 are c[j − i + R − 1]
    const row = tf.pad(tf.reshape(c, [N, 1, W]), [
      [0, 0],
      [0, 0],
      [0, 1],
    ]);
    const tiled = tf.reshape(tf.tile(row, [1, R, 1]), [N, R * (W + 1)]);
    const skewed = tf.reshape(tf.slice(tiled, [0, 0], [N, R * W]), [N, R, W]);
    return tf.slice(skewed, [0, 0, R - 1], [N, R, K]) as tf.Tensor3D;
  });
}

/** s[r] = Σ_i G[i, i + r] for r = 0 … L − 1, for each of the N matrices G [N, L, L]. */
function upperDiagonalSums(g: tf.Tensor3D): tf.Tensor2D {
  const [N, L] = g.shape;
  // pad rows to width 2L − 1 and re-read with width 2L: row i shifts i entries left, so column k
  // holds G[i, i + k]
  const padded = tf.reshape(
    tf.pad(g, [
      [0, 0],
      [0, 0],
      [0, L - 1],
    ]),
    [N, L * (2 * L - 1)],
  );
  const skewed = tf.reshape(
    tf.pad(padded, [
      [0, 0],
      [0, L],
    ]),
    [N, L, 2 * L],
  );
  return tf.sum(tf.slice(skewed, [0, 0, 0], [N, L, L]), 1) as tf.Tensor2D;
}

/** Σ_i G[i, i + r] for r = −(L−1) … L − 1 at index r + L − 1: the gradient of c from dy·xᵀ. */
function diagonalSums(g: tf.Tensor3D): tf.Tensor2D {
  const L = g.shape[1];
  const upper = upperDiagonalSums(g); // r ≥ 0
  if (L === 1) return upper;
  const lower = upperDiagonalSums(tf.transpose(g, [0, 2, 1]) as tf.Tensor3D); // −r ≥ 0
  return tf.concat([tf.reverse(tf.slice(lower, [0, 1], [-1, L - 1]), 1), upper], 1) as tf.Tensor2D;
}

/**
 * Keeps the inputs a custom gradient needs. tfjs's `save` clones them, and on wasm a clone is a
 * copy that tfjs's own test-mode leak check (IS_TEST) counts as a leak; there the values are kept
 * as JavaScript copies instead and become tensors again when the gradient runs.
 */
function retain(tensors: tf.Tensor[], save: tf.GradSaveFunc): (saved: tf.Tensor[]) => tf.Tensor[] {
  if (!backendCapabilities().savedTensorsAreCopies) {
    save(tensors);
    return (saved) => saved;
  }
  const copies = tensors.map((t) => ({
    values: t.dataSync().slice(),
    shape: t.shape,
    dtype: t.dtype,
  }));
  return () => copies.map((c) => tf.tensor(c.values, c.shape, c.dtype));
}

const denseProduct = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [c, x, save] = args as [tf.Tensor2D, tf.Tensor3D, tf.GradSaveFunc];
  const L = x.shape[1];
  const restore = retain([c, x], save);
  return {
    // tidy: the intermediates are gone before tfjs checks the custom kernel for leaks
    value: tf.tidy(() => matMul(toeplitzMatrix(c, L), x)),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [cs, xs] = restore(saved) as [tf.Tensor2D, tf.Tensor3D];
      const dy3 = dy as tf.Tensor3D;
      const dx = matMul(toeplitzMatrix(reverseLast(cs), L), dy3); // Cᵀ dy
      const dc = diagonalSums(matMul(dy3, xs, false, true)); // Σ over diagonals of dy·xᵀ
      return [dc, dx];
    },
  };
}) as (c: tf.Tensor2D, x: tf.Tensor3D) => tf.Tensor3D;

/** The spectrum of the circulant's first column a (a[s] = c_{−s}) for one batch item. */
function kernelSpectrum(c: tf.TypedArray, offset: number, L: number, P: number) {
  const re = new Float64Array(P);
  const im = new Float64Array(P);
  for (let t = 0; t < L; t++) re[t] = c[offset + L - 1 - t]!;
  for (let t = 1; t < L; t++) re[P - t] = c[offset + L - 1 + t]!;
  fft(re, im, fftPlan(P));
  return { re, im };
}

/** The FFT of x_p + i·x_{p+1} (columns p and p + 1 of batch item b, zero-padded to P) into re, im. */
function pairSpectrum(
  x: tf.TypedArray,
  b: number,
  p: number,
  L: number,
  n: number,
  re: Float64Array,
  im: Float64Array,
): void {
  re.fill(0);
  im.fill(0);
  const base = b * L * n;
  const second = p + 1 < n;
  for (let t = 0; t < L; t++) {
    re[t] = x[base + t * n + p]!;
    if (second) im[t] = x[base + t * n + p + 1]!;
  }
  fft(re, im, fftPlan(re.length));
}

/** Multiplies the spectrum (re, im) by A (or conj(A)), inverts it and writes the pair into out. */
function applyAndStore(
  re: Float64Array,
  im: Float64Array,
  spectrum: { re: Float64Array; im: Float64Array },
  conjugate: boolean,
  out: Float32Array,
  b: number,
  p: number,
  L: number,
  n: number,
): void {
  const P = re.length;
  const s = conjugate ? -1 : 1;
  for (let k = 0; k < P; k++) {
    const ar = spectrum.re[k]!;
    const ai = s * spectrum.im[k]!;
    const xr = re[k]!;
    const xi = im[k]!;
    re[k] = xr * ar - xi * ai;
    im[k] = xr * ai + xi * ar;
  }
  fft(re, im, fftPlan(P), true);
  const base = b * L * n;
  const second = p + 1 < n;
  for (let t = 0; t < L; t++) {
    out[base + t * n + p] = re[t]! / P;
    if (second) out[base + t * n + p + 1] = im[t]! / P;
  }
}

/** C·x (or Cᵀ·x with `adjoint`) for every batch item by FFT, on the CPU side. */
function fftApply(c: tf.Tensor2D, x: tf.Tensor3D, adjoint: boolean): tf.Tensor3D {
  const [N, L, n] = x.shape;
  const P = nextPowerOfTwo(2 * L - 1);
  const cData = c.dataSync();
  const xData = x.dataSync();
  const out = new Float32Array(N * L * n);
  const re = new Float64Array(P);
  const im = new Float64Array(P);
  for (let b = 0; b < N; b++) {
    const spectrum = kernelSpectrum(cData, b * (2 * L - 1), L, P);
    for (let p = 0; p < n; p += 2) {
      pairSpectrum(xData, b, p, L, n, re, im);
      applyAndStore(re, im, spectrum, adjoint, out, b, p, L, n);
    }
  }
  return tf.tensor3d(out, [N, L, n]);
}

/**
 * ∂c for y = C·x given dy, by FFT: with a[s] = c_{−s} the circulant's column, ∂a = corr(x, dy) =
 * IFFT(Σ_columns conj(X)·DY). Packing columns p, p + 1 as x_p + i·x_{p+1} (and dy alike) keeps
 * this exact: the real part of IFFT(conj(X)·DY) is the sum of the two columns' correlations.
 */
function fftBiasGradient(x: tf.Tensor3D, dy: tf.Tensor3D): tf.Tensor2D {
  const [N, L, n] = x.shape;
  const P = nextPowerOfTwo(2 * L - 1);
  const xData = x.dataSync();
  const dyData = dy.dataSync();
  const W = 2 * L - 1;
  const out = new Float32Array(N * W);
  const [xr, xi, dr, di] = [0, 0, 0, 0].map(() => new Float64Array(P)) as Float64Array[];
  for (let b = 0; b < N; b++) {
    const sRe = new Float64Array(P);
    const sIm = new Float64Array(P);
    for (let p = 0; p < n; p += 2) {
      pairSpectrum(xData, b, p, L, n, xr!, xi!);
      pairSpectrum(dyData, b, p, L, n, dr!, di!);
      for (let k = 0; k < P; k++) {
        // conj(X)·DY
        sRe[k] += xr![k]! * dr![k]! + xi![k]! * di![k]!;
        sIm[k] += xr![k]! * di![k]! - xi![k]! * dr![k]!;
      }
    }
    fft(sRe, sIm, fftPlan(P), true);
    const o = b * W;
    for (let t = 0; t < L; t++) out[o + L - 1 - t] = sRe[t]! / P;
    for (let t = 1; t < L; t++) out[o + L - 1 + t] = sRe[P - t]! / P;
  }
  return tf.tensor2d(out, [N, W]);
}

const fftProduct = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [c, x, save] = args as [tf.Tensor2D, tf.Tensor3D, tf.GradSaveFunc];
  const restore = retain([c, x], save);
  return {
    value: fftApply(c, x, false),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [cs, xs] = restore(saved) as [tf.Tensor2D, tf.Tensor3D];
      return [fftBiasGradient(xs, dy as tf.Tensor3D), fftApply(cs, dy as tf.Tensor3D, true)];
    },
  };
}) as (c: tf.Tensor2D, x: tf.Tensor3D) => tf.Tensor3D;
