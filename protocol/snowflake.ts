/** Discord's id format, free of zod so the browser SDK and zod schemas alike check it one way. */

/** A snowflake on the wire: a 64-bit id as a decimal string, 17–20 digits in practice. */
export const SNOWFLAKE_PATTERN = /^\d{17,20}$/;

/** The largest 64-bit unsigned id, 2^64 − 1. */
const MAX_SNOWFLAKE = "18446744073709551615";

/** Whether a string of digits fits in 64 bits: of two 20-digit strings, the string order is the numeric one. */
export function fitsIn64Bits(digits: string): boolean {
  return digits.length < 20 || digits <= MAX_SNOWFLAKE;
}

export function isSnowflake(value: unknown): value is string {
  return typeof value === "string" && SNOWFLAKE_PATTERN.test(value) && fitsIn64Bits(value);
}
