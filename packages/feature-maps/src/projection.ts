import type { Matrix } from '@kernel-attention/random-features';
import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './packed-lanes.js';
import { assertTensor, shapeString } from './validate.js';

/** A projection W [m, d]: a Float64 Matrix from random-features, or a tfjs tensor (e.g. a Variable). */
export type Projection = Matrix | tf.Tensor2D;

function isMatrix(p: unknown): p is Matrix {
  return (
    typeof p === 'object' &&
    p !== null &&
    (p as Matrix).data instanceof Float64Array &&
    Number.isInteger((p as Matrix).rows) &&
    Number.isInteger((p as Matrix).cols)
  );
}

/**
 * Holds W [m, d] and serves x̂·Wᵀ = d^-1/4 · x·Wᵀ as one 2-D matmul. For a Float64 Matrix the
 * operand d^-1/4·Wᵀ [d, m] is formed once in Float64 and uploaded once per backend (cached and
 * kept outside any tidy); a tensor projection is used as it is each call, so gradients reach it.
 *
 * Plumbing shared by the packages, not part of the public API.
 *
 * @internal
 */
export class ProjectionHolder {
  readonly rows: number;
  readonly cols: number;
  private readonly matrix: Matrix | null;
  private readonly tensor: tf.Tensor2D | null;
  private readonly cache = new Map<string, tf.Tensor2D>();

  constructor(fn: string, projection: Projection) {
    if (isMatrix(projection)) {
      if (
        projection.data.length !== projection.rows * projection.cols ||
        projection.rows < 1 ||
        projection.cols < 1
      ) {
        throw new RangeError(
          `${fn}: projection must be a non-empty Matrix with data.length = rows·cols, got ${projection.rows}×${projection.cols} with ${projection.data.length} values`,
        );
      }
      this.matrix = projection;
      this.tensor = null;
      this.rows = projection.rows;
      this.cols = projection.cols;
    } else {
      assertTensor(
        fn,
        'projection',
        projection,
        { rank: 2, dtype: 'float32' },
        '[numFeatures, dim]',
      );
      this.matrix = null;
      this.tensor = projection;
      [this.rows, this.cols] = projection.shape;
    }
  }

  /**
   * W as a Float64 Matrix: the one given, or a copy of the tensor's values read now (for sending
   * the projection to another thread, which cannot share tfjs tensors).
   */
  toMatrix(): Matrix {
    if (this.matrix) return this.matrix;
    return { rows: this.rows, cols: this.cols, data: Float64Array.from(this.tensor!.dataSync()) };
  }

  /** Data normalizer c = d^-1/4 (so that x̂·ŷ = x·y/√d). */
  get normalizer(): number {
    return this.cols ** -0.25;
  }

  /** d^-1/4·Wᵀ, [d, m], on the current backend. The cached tensor must not be disposed by callers. */
  scaledTransposed(): tf.Tensor2D {
    if (this.tensor !== null) {
      return tf.tidy(() => tf.mul(tf.transpose(this.tensor!), this.normalizer));
    }
    const backend = tf.getBackend();
    const hit = this.cache.get(backend);
    if (hit !== undefined && !hit.isDisposed) return hit;
    const { rows: m, cols: d, data } = this.matrix!;
    const c = this.normalizer;
    const values = new Float32Array(d * m);
    for (let i = 0; i < m; i++)
      for (let t = 0; t < d; t++) values[t * m + i] = c * data[i * d + t]!;
    const uploaded = tf.keep(tf.tensor2d(values, [d, m]));
    this.cache.set(backend, uploaded);
    return uploaded;
  }

  /**
   * Whether `scaledTransposed()` returns the holder's cached tensor (a Matrix projection; never
   * free it) rather than a fresh one the caller must free (a tensor projection).
   */
  get cachesOperand(): boolean {
    return this.tensor === null;
  }

  /** u = x̂·Wᵀ for x [..., L, d] as a 2-D [N, m] tensor (N = product of leading dims). */
  project(fn: string, x: tf.Tensor): tf.Tensor2D {
    this.assertInput(fn, x);
    const d = this.cols;
    const x2 = tf.reshape(x, [-1, d]) as tf.Tensor2D;
    const w = this.scaledTransposed();
    const u = matMul(x2, w);
    if (!this.cachesOperand) w.dispose();
    return u;
  }

  assertInput(fn: string, x: tf.Tensor): void {
    assertTensor(fn, 'x', x, { rank: [2, 99], dtype: 'float32' }, '[..., length, dim]');
    if (x.shape[x.rank - 1] !== this.cols) {
      throw new RangeError(
        `${fn}: x must have last dimension ${this.cols} (the projection's columns), got shape ${shapeString(x.shape)}`,
      );
    }
  }

  dispose(): void {
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}
