/**
 * Small validators for what the hub sends, at a fraction of zod/mini's size in a browser bundle. Each takes any
 * input and returns it typed, or `invalid`. They follow zod's rules where the SDK relies on them: objects are
 * rebuilt with only their declared keys (zod's default strip), an optional key absent from the input stays absent,
 * an array checks every index (holes included). client/test/schemas.test.ts runs them against protocol/'s zod.
 */

/** What a validator returns for input it rejects. */
export const invalid: unique symbol = Symbol("invalid");
export type Validator<T> = (input: unknown) => T | typeof invalid;
export type Output<V> = V extends Validator<infer T> ? T : never;

declare const optionalKey: unique symbol;
/** A validator whose key an object may lack (zod's `key?: T | undefined`). */
export type Optional<T> = Validator<T | undefined> & { readonly [optionalKey]: true };

/** Accepts the input as T when `test` holds. */
export const when =
  <T>(test: (input: unknown) => boolean): Validator<T> =>
  (input) =>
    test(input) ? (input as T) : invalid;

/** A string of `min` to `max` UTF-16 code units (zod's min/max length). */
export const string = (min = 0, max = Infinity) => when<string>((s) => typeof s === "string" && s.length >= min && s.length <= max);

/** A safe integer in [min, max] (zod's z.number().int().min().max()). */
export const int = (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
  when<number>((n) => Number.isSafeInteger(n) && (n as number) >= min && (n as number) <= max);

/** One of `values` (zod's literal and enum). */
export const literal = <const T extends string | number | boolean>(...values: T[]) => when<T>((value) => values.includes(value as T));

export const nullable =
  <T>(validator: Validator<T>): Validator<T | null> =>
  (input) =>
    input === null ? null : validator(input);

export const optional = <T>(validator: Validator<T>) => ((input: unknown) => (input === undefined ? undefined : validator(input))) as Optional<T>;

export const array =
  <T>(item: Validator<T>): Validator<T[]> =>
  (input) => {
    if (!Array.isArray(input)) return invalid;
    // Array.from visits holes too, as undefined, as zod's index loop does.
    const items = Array.from(input as unknown[], (value) => item(value));
    return items.includes(invalid) ? invalid : (items as T[]);
  };

const isObject = (input: unknown): input is Record<string, unknown> => typeof input === "object" && input !== null && !Array.isArray(input);

type Shape = Record<string, Validator<unknown>>;
type Flat<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOutput<S extends Shape> = Flat<
  { [K in keyof S as S[K] extends Optional<unknown> ? never : K]: Output<S[K]> } & {
    [K in keyof S as S[K] extends Optional<unknown> ? K : never]?: Output<S[K]>;
  }
>;

/** An object with `shape`'s keys; other keys are dropped from the output. */
export const object =
  <S extends Shape>(shape: S): Validator<ObjectOutput<S>> =>
  (input) => {
    if (!isObject(input)) return invalid;
    const output: Record<string, unknown> = {};
    for (const key in shape) {
      const value = shape[key]!(input[key]);
      if (value === invalid) return invalid;
      if (value !== undefined || key in input) output[key] = value;
    }
    return output as ObjectOutput<S>;
  };

/** Any object, all of its own keys kept (zod's looseObject({})). */
export const anyObject: Validator<Record<string, unknown>> = (input) => (isObject(input) ? { ...input } : invalid);

/** The first of `options` that accepts the input (zod's union). */
export const union =
  <V extends Validator<unknown>[]>(...options: V): Validator<Output<V[number]>> =>
  (input) => {
    for (const option of options) {
      const value = option(input);
      if (value !== invalid) return value as Output<V[number]>;
    }
    return invalid;
  };
