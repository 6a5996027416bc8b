/**
 * Command-line values for the benchmark scripts (bench, soak, sse-cost): each option is read once, with its
 * default, and a bad value stops the run with one line naming the option.
 */

export interface NumberRange {
  min?: number;
  max?: number;
  integer?: boolean;
}

/** `raw` as a number, or `fallback` when absent; outside `range` (or not a number) it names `--name`. */
export function numberOption(name: string, raw: string | undefined, fallback: number, range: NumberRange = {}): number {
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  const { min, max, integer = false } = range;
  const inRange = (min === undefined ? value > 0 : value >= min) && (max === undefined || value <= max);
  if (!Number.isFinite(value) || !inRange || (integer && !Number.isInteger(value))) {
    const bounds = `${min === undefined ? "above 0" : `from ${min}`}${max === undefined ? "" : ` to ${max}`}`;
    throw new Error(`--${name}=${raw} must be ${integer ? "a whole number" : "a number"} ${bounds}`);
  }
  return value;
}

/** A comma-separated list of numbers, each checked like numberOption. */
export function numberListOption(name: string, raw: string | undefined, fallback: string, range: NumberRange = {}): number[] {
  return (raw ?? fallback).split(",").map((item) => numberOption(name, item.trim(), Number.NaN, range));
}

/** A comma-separated list of names, each one of `allowed`. */
export function choiceListOption<T extends string>(name: string, raw: string, allowed: readonly T[]): T[] {
  return raw.split(",").map((item) => {
    const choice = item.trim();
    if (!(allowed as readonly string[]).includes(choice)) throw new Error(`--${name}: unknown ${choice} (have ${allowed.join(", ")})`);
    return choice as T;
  });
}
