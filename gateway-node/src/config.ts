import { z } from "zod";
import { isSnowflake } from "../../protocol/snowflake.js";

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const Snowflake = z.string().refine(isSnowflake, "must be a Discord snowflake");
const commaList = z.string().transform((raw) => raw.split(",").map((entry) => entry.trim()).filter(Boolean));

/** A URL with one of these schemes (`new URL` parses, so a host without a scheme fails too). */
const urlWith = (schemes: string[], message: string) =>
  z.string().refine((raw) => URL.canParse(raw) && schemes.includes(new URL(raw).protocol), message);

/**
 * The edge's POST /internal/events: any other path answers 404, which would look like a hub refusing every event. The
 * lease endpoint is its sibling, so the path must end there.
 */
const HubEndpoint = urlWith(["https:", "http:"], "must be the edge's events URL, such as https://edge.example.com/internal/events").refine(
  (raw) => !URL.canParse(raw) || new URL(raw).pathname.endsWith("/internal/events"),
  "must end with /internal/events (the edge's events URL, such as https://edge.example.com/internal/events)",
);

/** A whole number from the environment; `message` says what it must be (not zod's "received NaN"). */
const wholeNumber = (min: number, max: number, message: string) =>
  z.string().trim().regex(/^\d+$/, message).transform(Number).pipe(z.number().min(min, message).max(max, message));

const ConfigSchema = z
  .object({
  DISCORD_BOT_TOKEN: z.string().min(1, "required"),
  PRIMARY_GUILD_ID: Snowflake,
  HUB_ENDPOINT: HubEndpoint,
  HUB_SECRET: z.string().min(16, "must be at least 16 characters"),
  DISCORD_API_BASE: z.url("must be a URL").default("https://discord.com/api/v10"),
  DISCORD_GATEWAY_URL: urlWith(["wss:", "ws:"], "must be a ws(s) URL").optional(),
  HEALTH_PORT: wholeNumber(0, 65_535, "must be a port (0-65535)").default(8080),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  SESSION_FILE: z.string().min(1).optional(),
  /** The edge's list: every guild it serves besides PRIMARY_GUILD_ID, so one list configures both sides. */
  ALLOWED_GUILD_IDS: commaList.pipe(z.array(z.string().refine(isSnowflake, "must be Discord snowflakes separated by commas"))).optional(),
  /** Discord's shard count; absent: the count GET /gateway/bot recommends. Every process of one bot must agree. */
  SHARD_COUNT: wholeNumber(1, 4096, "must be a whole number from 1").optional(),
  /** The shards this process runs (e.g. "0,1"); absent: all of them. Needs SHARD_COUNT, so processes agree. */
  SHARD_IDS: commaList.pipe(z.array(z.string().regex(/^\d{1,4}$/, { message: "must be shard numbers separated by commas", abort: true }).transform(Number))).optional(),
})
  .refine((config) => !config.SHARD_IDS || config.SHARD_COUNT !== undefined, { path: ["SHARD_IDS"], message: "needs SHARD_COUNT (every process must agree on it)" })
  .refine((config) => !config.SHARD_IDS || config.SHARD_COUNT === undefined || config.SHARD_IDS.every((id) => id < config.SHARD_COUNT!), {
    path: ["SHARD_IDS"],
    message: "must be below SHARD_COUNT",
  })
  .refine((config) => !config.SHARD_IDS || config.SHARD_IDS.length > 0, { path: ["SHARD_IDS"], message: "must name at least one shard" });

export type GatewayConfig = z.infer<typeof ConfigSchema>;

/** Every guild this deployment serves, primary first, each once: the same set as the edge's. */
export function servedGuildIds(config: GatewayConfig): string[] {
  return [...new Set([config.PRIMARY_GUILD_ID, ...(config.ALLOWED_GUILD_IDS ?? [])])];
}

/** Parses the environment once; the error names every bad variable in one line, never a value. */
export function parseConfig(env: NodeJS.ProcessEnv): { ok: true; config: GatewayConfig } | { ok: false; message: string } {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ""));
  const result = ConfigSchema.safeParse(present);
  if (result.success) return { ok: true, config: result.data };
  const problems = result.error.issues.map((issue) => {
    // The variable, also for an issue inside a list (SHARD_IDS.1): the operator sets variables, not list items.
    const name = String(issue.path[0]);
    return present[name] === undefined ? `${name} is required` : `${name} ${issue.message}`;
  });
  return { ok: false, message: `invalid configuration: ${[...new Set(problems)].join("; ")}` };
}
