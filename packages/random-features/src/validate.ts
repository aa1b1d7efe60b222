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
  return typeof value === 'object' ? Object.prototype.toString.call(value) : String(value);
}
