import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generalized } from './generalized.js';

describe('generalized', () => {
  it('a user fn returning the wrong shape is reported', () => {
    const g = generalized({ fn: (t) => tf.sum(t, -1), inputDim: 8 });
    expect(() => g.features(tf.zeros([3, 8]), 'query')).toThrow(
      /fn must return a tensor of its input's shape \[3,8\], got \[3\]/,
    );
  });
});
