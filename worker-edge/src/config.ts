import { z } from "zod";
import { Snowflake } from "../../protocol/index.js";
import type { FlushCadence } from "./hub/coalescer.js";

/** Cloudflare's location hints for Durable Objects (where an object is created; it never moves afterwards). */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

/** The sockets one relay holds at most by default (RELAY_MAX_SOCKETS); docs/operations.md sizes it. */
export const DEFAULT_RELAY_MAX_SOCKETS = 2_000;

const commaList = z
  .string()
  .optional()
  .transform((raw) => (raw ?? "").split(",").map((item) => item.trim()).filter(Boolean));

/** A browser's `Origin` is scheme, host and port only: an entry with a path or a trailing slash would never match. */
const Origin = z.string().refine((entry) => URL.canParse(entry) && new URL(entry).origin === entry, "must be origins such as https://app.example.com (no path, no trailing slash), separated by commas");

/** One public JWK as JSON: checked here, so a bad key is a misconfiguration rather than every token refused. Never echoed. */
const InlinePublicJwk = z.string().refine((raw) => {
  try {
    const jwk = JSON.parse(raw) as unknown;
    return typeof jwk === "object" && jwk !== null && "kty" in jwk && !("d" in jwk) && !("k" in jwk);
  } catch {
    return false;
  }
}, "must be one public JWK as JSON (no private part)");

/** A whole number in [min, max]; absent or empty: `fallback`. */
const optionalInt = (min: number, max: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((v) => Number(v?.trim() || fallback))
    .pipe(z.number().int().min(min).max(max));

const EdgeConfigSchema = z
  .object({
    PRIMARY_GUILD_ID: Snowflake,
    DISCORD_BOT_TOKEN: z.string().min(1),
    HUB_SECRET: z.string().min(16, "must be at least 16 characters"),
    // Set only while rotating: requests signed with it are still accepted.
    HUB_SECRET_PREVIOUS: z
      .string()
      .optional()
      .transform((v) => v?.trim() || undefined)
      .pipe(z.string().min(16, "must be at least 16 characters").optional()),
    JWT_ISSUER: z.string().min(1),
    JWT_AUDIENCE: z.string().min(1),
    JWT_PUBLIC_JWK_URL: z.string().optional().transform((v) => v?.trim() || undefined).pipe(z.url().optional()),
    JWT_PUBLIC_JWK: z.string().optional().transform((v) => v?.trim() || undefined).pipe(InlinePublicJwk.optional()),
    WEB_ORIGIN: commaList.pipe(z.array(Origin)),
    DISCORD_API_BASE: z.url().default("https://discord.com/api/v10"),
    ALLOWED_GUILD_IDS: commaList.pipe(z.array(Snowflake)),
    ROOM_IDLE_TTL_SECONDS: z.coerce.number().int().min(0).default(0),
    ADMIN_ROLE: z.string().optional().transform((v) => v?.trim() || "admin"),
    // Placement: where each guild's hub is created (near the gateway); absent: near its first request.
    HUB_LOCATION_HINT: z.string().optional().transform((v) => v?.trim() || undefined).pipe(z.enum(LOCATION_HINTS).optional()),
    // Flushes under load: "adaptive" (the default) or a fixed interval in ms (0: every publish at once).
    FLUSH_CADENCE_MS: z
      .string()
      .optional()
      .transform((v) => (!v?.trim() || v.trim() === "adaptive" ? ("adaptive" as const) : Number(v)))
      .pipe(z.union([z.literal("adaptive"), z.number().int().min(0).max(1_000)]))
      .transform((v): FlushCadence => (v === "adaptive" ? { kind: "adaptive" } : { kind: "fixed", ms: v })),
    // The relay tier (docs/operations.md "Relays"): 0 relays keeps every socket on the hub.
    RELAY_SHARDS: optionalInt(0, 64, 0),
    RELAY_REGIONS: commaList.pipe(z.array(z.enum(LOCATION_HINTS))),
    RELAY_MAX_SOCKETS: optionalInt(1, 32_000, DEFAULT_RELAY_MAX_SOCKETS),
  })
  .refine((c) => c.JWT_PUBLIC_JWK_URL || c.JWT_PUBLIC_JWK, {
    message: "set JWT_PUBLIC_JWK_URL or JWT_PUBLIC_JWK",
    path: ["JWT_PUBLIC_JWK_URL"],
  });

export type EdgeConfig = z.infer<typeof EdgeConfigSchema>;

export class ConfigError extends Error {}

const parsed = new WeakMap<object, EdgeConfig>();

/** Parses the Worker's bindings once per env object; a bad deployment fails with one message naming every bad variable. */
export function edgeConfig(env: Env): EdgeConfig {
  const cached = parsed.get(env);
  if (cached) return cached;
  const result = EdgeConfigSchema.safeParse(env);
  if (!result.success) {
    const names = result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${names.join("; ")}`);
  }
  parsed.set(env, result.data);
  return result.data;
}

/** The guilds this deployment serves: the primary one, plus ALLOWED_GUILD_IDS in multi-guild mode. */
export function servedGuilds(config: EdgeConfig): Set<string> {
  return new Set([config.PRIMARY_GUILD_ID, ...config.ALLOWED_GUILD_IDS]);
}

/** The secrets an internal request may be signed with: the current one, and the previous one while rotating. */
export function hubSecrets(config: EdgeConfig): string[] {
  return config.HUB_SECRET_PREVIOUS ? [config.HUB_SECRET, config.HUB_SECRET_PREVIOUS] : [config.HUB_SECRET];
}

export function isMultiGuild(config: EdgeConfig): boolean {
  return config.ALLOWED_GUILD_IDS.length > 0;
}
