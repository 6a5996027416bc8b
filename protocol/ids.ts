import { z } from "zod";

/** A Discord snowflake: a 64-bit id as a decimal string (17–20 digits in practice). */
export const Snowflake = z
  .string()
  .regex(/^\d{17,20}$/, "must be a Discord snowflake (17–20 digits)")
  .refine((id) => id.length < 20 || id <= "18446744073709551615", "must fit in 64 bits");
export type Snowflake = z.infer<typeof Snowflake>;
