import { z } from "zod";

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const ConfigSchema = z.object({
  DISCORD_BOT_TOKEN: z.string().min(1, "required"),
  PRIMARY_GUILD_ID: z.string().regex(/^\d{17,20}$/, "must be a Discord snowflake"),
  HUB_ENDPOINT: z.url("must be a URL such as https://edge.example.com/internal/events"),
  HUB_SECRET: z.string().min(16, "must be at least 16 characters"),
  DISCORD_API_BASE: z.url("must be a URL").default("https://discord.com/api/v10"),
  DISCORD_GATEWAY_URL: z.url("must be a ws(s) URL").optional(),
  HEALTH_PORT: z.coerce.number().int("must be a port").min(0).max(65_535).default(8080),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  SESSION_FILE: z.string().min(1).optional(),
});

export type GatewayConfig = z.infer<typeof ConfigSchema>;

/** Parses the environment once; the error names every bad variable in one line, never a value. */
export function parseConfig(env: NodeJS.ProcessEnv): { ok: true; config: GatewayConfig } | { ok: false; message: string } {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ""));
  const result = ConfigSchema.safeParse(present);
  if (result.success) return { ok: true, config: result.data };
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join(".");
    return present[name] === undefined ? `${name} is required` : `${name} ${issue.message}`;
  });
  return { ok: false, message: `invalid configuration: ${[...new Set(problems)].join("; ")}` };
}
