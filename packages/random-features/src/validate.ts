/** Throws unless `value` is a positive integer; the message names the function and the argument. */
export function assertPositiveInt(
  fn: string,
  name: string,
  value: unknown,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${fn}: ${name} must be a positive integer, got ${describe(value)}`);
  }
}

/** Throws unless `value` is a non-negative integer. */
export function assertNonNegativeInt(
  fn: string,
  name: string,
  value: unknown,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new RangeError(`${fn}: ${name} must be a non-negative integer, got ${describe(value)}`);
  }
}

export function describe(value: unknown): string {
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return typeof value === 'object' ? Object.prototype.toString.call(value) : String(value);
}

/** Throws a TypeError naming `fn` unless `opts` is an options object (not null, an array or a primitive). */
export function assertOptions(fn: string, opts: unknown, expected: string): asserts opts is object {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new TypeError(`${fn}: options ${expected} are required, got ${describe(opts)}`);
  }
}

/**
 * The most values one Float64 matrix may hold here: 2^31 − 1 (JavaScript engines cap typed arrays
 * near there, and tfjs indexes tensors with 32-bit integers).
 */
export const MAX_MATRIX_VALUES = 2 ** 31 - 1;

/** Throws a RangeError naming the sizes unless rows·cols values can be allocated. */
export function assertAllocatable(fn: string, what: string, values: number): void {
  if (values > MAX_MATRIX_VALUES) {
    const gib = (values * 8) / 2 ** 30;
    throw new RangeError(
      `${fn}: ${what} would hold ${values} values (${gib.toFixed(1)} GiB as Float64), more than the ${MAX_MATRIX_VALUES} one array can hold`,
    );
  }
}
