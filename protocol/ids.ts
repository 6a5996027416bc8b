import { z } from "zod";
import { fitsIn64Bits, SNOWFLAKE_PATTERN } from "./snowflake.js";

/** A Discord snowflake (protocol/snowflake.ts), with a message for each way an id can fail. */
export const Snowflake = z
  .string()
  .regex(SNOWFLAKE_PATTERN, "must be a Discord snowflake (17–20 digits)")
  .refine(fitsIn64Bits, "must fit in 64 bits");
export type Snowflake = z.infer<typeof Snowflake>;
