/**
 * A radix-2 complex FFT in Float64 JavaScript, for the CPU-side Toeplitz products of
 * toeplitz.ts. tfjs-backend-wasm has no FFT kernel at all and tfjs's FFT on the GPU backends is a
 * naive DFT, so the O(L log L) path is ours; it runs in Float64, which keeps the circulant
 * products exact to float32 output precision even for long sequences.
 */

/** Bit-reversal table and twiddles for one power-of-two size, cached. */
export interface FftPlan {
  readonly size: number;
  readonly rev: Uint32Array;
  /** cos(2πk/size), sin(2πk/size) for k < size/2. */
  readonly cos: Float64Array;
  readonly sin: Float64Array;
}

const plans = new Map<number, FftPlan>();

export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function fftPlan(size: number): FftPlan {
  const hit = plans.get(size);
  if (hit) return hit;
  if (size < 1 || (size & (size - 1)) !== 0)
    throw new RangeError(`fftPlan: size must be a power of two, got ${size}`);
  const bits = Math.log2(size);
  const rev = new Uint32Array(size);
  for (let i = 0; i < size; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  const half = size >> 1;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let k = 0; k < half; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / size);
    sin[k] = Math.sin((2 * Math.PI * k) / size);
  }
  const plan = { size, rev, cos, sin };
  plans.set(size, plan);
  return plan;
}

/**
 * In-place FFT of (re, im): X_k = Σ_t x_t e^{∓2πi kt/n} (− forward, + inverse; the inverse is
 * not divided by n).
 */
export function fft(re: Float64Array, im: Float64Array, plan: FftPlan, inverse = false): void {
  const n = plan.size;
  const { rev, cos, sin } = plan;
  for (let i = 0; i < n; i++) {
    const j = rev[i]!;
    if (j > i) {
      const tr = re[i]!;
      re[i] = re[j]!;
      re[j] = tr;
      const ti = im[i]!;
      im[i] = im[j]!;
      im[j] = ti;
    }
  }
  const sign = inverse ? 1 : -1;
  for (let len = 2; len <= n; len <<= 1) {
    const half = len >> 1;
    const step = n / len;
    for (let start = 0; start < n; start += len) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step]!;
        const wi = sign * sin[k * step]!;
        const a = start + k;
        const b = a + half;
        const br = re[b]!;
        const bi = im[b]!;
        const tr = br * wr - bi * wi;
        const ti = br * wi + bi * wr;
        const ar = re[a]!;
        const ai = im[a]!;
        re[a] = ar + tr;
        im[a] = ai + ti;
        re[b] = ar - tr;
        im[b] = ai - ti;
      }
    }
  }
}
