import { z } from "zod";

/** A Discord snowflake: a 64-bit id as a decimal string (17–20 digits in practice). */
export const Snowflake = z.string().regex(/^\d{17,20}$/, "must be a Discord snowflake (17–20 digits)");
export type Snowflake = z.infer<typeof Snowflake>;
