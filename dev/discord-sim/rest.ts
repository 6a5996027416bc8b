import type { IncomingMessage, ServerResponse } from "node:http";
import { ChannelType } from "discord-api-types/v10";
import { z } from "zod";
import { MAX_GUILD_CHANNELS, MAX_ROOM_NAME_LENGTH, MAX_ROOM_USER_LIMIT } from "../../protocol/limits.js";
import { SNOWFLAKE_PATTERN } from "../../protocol/snowflake.js";
import type { BotToken } from "./bot-token.js";
import type { SessionStartBudget } from "./session-start.js";
import type { SimWorld } from "./world.js";

export interface RestFault {
  method: string;
  /** e.g. "POST /guilds/:id/channels"; any `:param` name matches, and the method prefix is optional. */
  route: string;
  /** A 2xx status with `delayMs` only delays the request, which is then served normally. */
  status: number;
  body?: unknown;
  retryAfterS?: number;
  times?: number;
  delayMs?: number;
}

interface Bucket {
  remaining: number;
  resetAt: number;
}

interface Route {
  /** The route template, e.g. "DELETE /channels/:id": what faults and bucket hashes are keyed by. */
  key: string;
  /** The major parameter: Discord keeps a separate bucket per guild or channel within one hash. */
  id?: string;
}

const BUCKET_LIMIT = 50;
const BUCKET_WINDOW_MS = 10_000;

/** What Discord answers for a status when a scripted fault brings no body of its own. */
const DEFAULT_ERROR_BODIES: Record<number, unknown> = {
  400: { message: "400: Bad Request", code: 0 },
  401: { message: "401: Unauthorized", code: 0 },
  403: { message: "Missing Permissions", code: 50013 },
  404: { message: "404: Not Found", code: 0 },
  500: { message: "500: Internal Server Error", code: 0 },
  502: { message: "502: Bad Gateway", code: 0 },
  503: { message: "503: Service Unavailable", code: 0 },
};

const CREATABLE_TYPES = [ChannelType.GuildText, ChannelType.GuildVoice, ChannelType.GuildCategory, ChannelType.GuildAnnouncement, ChannelType.GuildStageVoice, ChannelType.GuildForum];

/** Discord's own validation codes and messages, so a client that logs them sees the familiar text. */
const CreateChannelBody = z.object({
  name: z
    .string({ error: "This field is required" })
    .min(1, `Must be between 1 and ${MAX_ROOM_NAME_LENGTH} in length.`)
    .max(MAX_ROOM_NAME_LENGTH, `Must be between 1 and ${MAX_ROOM_NAME_LENGTH} in length.`),
  type: z.number().int().refine((type) => CREATABLE_TYPES.includes(type), "Value is not a valid enum value.").optional(),
  // A format issue, which maps to Discord's NUMBER_TYPE_COERCE below.
  parent_id: z.string().regex(SNOWFLAKE_PATTERN, "Value is not snowflake.").nullable().optional(),
  user_limit: z
    .number()
    .int()
    .min(0, "int value should be greater than or equal to 0.")
    .max(MAX_ROOM_USER_LIMIT, `int value should be less than or equal to ${MAX_ROOM_USER_LIMIT}.`)
    .optional(),
  bitrate: z.number().int().min(8_000).optional(),
  position: z.number().int().optional(),
  topic: z.string().max(1024).nullable().optional(),
});

const ERROR_CODE_FOR_ISSUE: Record<string, string> = {
  invalid_type: "BASE_TYPE_REQUIRED",
  too_small: "BASE_TYPE_BAD_LENGTH",
  too_big: "BASE_TYPE_BAD_LENGTH",
  invalid_format: "NUMBER_TYPE_COERCE",
  custom: "ENUM_TYPE_COERCE",
};

/**
 * Discord REST v10 for the calls this project makes: the gateway URL, creating, reading and deleting channels.
 * Bot token checked, Discord's error bodies and codes, X-RateLimit-* headers with real buckets, scripted faults.
 */
export class SimRest {
  readonly auditLog: Array<{ method: string; path: string; reason: string | null }> = [];
  private readonly faults: Array<RestFault & { left: number }> = [];
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly worlds: ReadonlyMap<string, SimWorld>,
    private readonly options: {
      token: BotToken;
      budget: SessionStartBudget;
      gatewayUrl: () => string;
      /** The shard count GET /gateway/bot recommends. */
      recommendedShards: number;
      log: (msg: string, fields?: Record<string, unknown>) => void;
    },
  ) {}

  scriptFault(fault: RestFault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  async handle(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase();
    const route = routeOf(method, path);
    if (!route) return reply(response, 404, { message: "404: Not Found", code: 0 });
    if (!this.options.token.acceptsAuthorization(request.headers.authorization)) {
      return reply(response, 401, { message: "401: Unauthorized", code: 0 });
    }
    const bucket = this.take(`${route.key} ${route.id ?? ""}`);
    const headers = rateLimitHeaders(route.key, bucket);
    const fault = this.faults.find((f) => f.left > 0 && faultMatches(f, method, route.key));
    if (fault) {
      fault.left--;
      this.options.log("scripted REST fault", { route: route.key, status: fault.status, delayMs: fault.delayMs });
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (fault.status === 429) return this.rateLimited(response, headers, fault.retryAfterS ?? 1, fault.body);
      if (fault.status >= 300) {
        return reply(response, fault.status, fault.body ?? DEFAULT_ERROR_BODIES[fault.status] ?? { message: `${fault.status}: Error`, code: 0 }, headers);
      }
    }
    if (bucket.remaining < 0) return this.rateLimited(response, headers, Math.max(0.001, (bucket.resetAt - Date.now()) / 1000));
    return this.serve(request, response, method, path, route, headers);
  }

  private async serve(request: IncomingMessage, response: ServerResponse, method: string, path: string, route: Route, headers: Record<string, string>): Promise<void> {
    const reason = auditReason(request);
    switch (route.key) {
      case "GET /gateway/bot":
        return reply(
          response,
          200,
          { url: this.options.gatewayUrl(), shards: this.options.recommendedShards, session_start_limit: this.options.budget.snapshot() },
          headers,
        );
      case "GET /guilds/:id/channels": {
        const world = this.worlds.get(route.id ?? "");
        if (!world) return reply(response, 404, { message: "Unknown Guild", code: 10004 }, headers);
        return reply(response, 200, [...world.channels.values()], headers);
      }
      case "POST /guilds/:id/channels": {
        const world = this.worlds.get(route.id ?? "");
        if (!world) return reply(response, 404, { message: "Unknown Guild", code: 10004 }, headers);
        const raw = await readJson(request);
        if (raw === INVALID_JSON) return reply(response, 400, { message: "The request body contains invalid JSON.", code: 50109 }, headers);
        const body = CreateChannelBody.safeParse(raw);
        if (!body.success) return reply(response, 400, invalidFormBody(body.error), headers);
        if (world.channels.size >= MAX_GUILD_CHANNELS) {
          return reply(response, 400, { message: `Maximum number of guild channels reached (${MAX_GUILD_CHANNELS})`, code: 30013 }, headers);
        }
        this.auditLog.push({ method, path, reason });
        const channel = world.createChannel({
          name: body.data.name,
          type: body.data.type ?? ChannelType.GuildText,
          parentId: body.data.parent_id ?? null,
          userLimit: body.data.user_limit,
        });
        this.options.log("channel created", { channelId: channel.id, name: channel.name, reason });
        return reply(response, 201, channel, headers);
      }
      case "GET /channels/:id": {
        const channel = this.worldOfChannel(route.id)?.channels.get(route.id ?? "");
        if (!channel) return reply(response, 404, { message: "Unknown Channel", code: 10003 }, headers);
        return reply(response, 200, channel, headers);
      }
      case "DELETE /channels/:id": {
        const channel = this.worldOfChannel(route.id)?.deleteChannel(route.id ?? "");
        if (!channel) return reply(response, 404, { message: "Unknown Channel", code: 10003 }, headers);
        this.auditLog.push({ method, path, reason });
        this.options.log("channel deleted", { channelId: channel.id, reason });
        return reply(response, 200, channel, headers);
      }
    }
  }

  private worldOfChannel(channelId: string | undefined): SimWorld | undefined {
    return [...this.worlds.values()].find((world) => channelId !== undefined && world.channels.has(channelId));
  }

  private rateLimited(response: ServerResponse, headers: Record<string, string>, retryAfterS: number, body?: unknown): void {
    const global = typeof body === "object" && body !== null && (body as { global?: unknown }).global === true;
    reply(response, 429, body ?? { message: "You are being rate limited.", retry_after: retryAfterS, global: false }, {
      ...headers,
      "Retry-After": String(Math.ceil(retryAfterS)),
      "X-RateLimit-Scope": global ? "global" : "user",
      ...(global ? { "X-RateLimit-Global": "true" } : {}),
    });
  }

  private take(key: string): Bucket {
    const now = Date.now();
    let bucket = this.buckets.get(key);
    if (!bucket || bucket.resetAt <= now) {
      bucket = { remaining: BUCKET_LIMIT, resetAt: now + BUCKET_WINDOW_MS };
      this.buckets.set(key, bucket);
    }
    bucket.remaining--;
    return bucket;
  }
}

function routeOf(method: string, path: string): Route | undefined {
  if (method === "GET" && path === "/gateway/bot") return { key: "GET /gateway/bot" };
  const guildChannels = /^\/guilds\/(\d+)\/channels$/.exec(path);
  if (guildChannels && (method === "GET" || method === "POST")) return { key: `${method} /guilds/:id/channels`, id: guildChannels[1] };
  const channel = /^\/channels\/(\d+)$/.exec(path);
  if (channel && (method === "GET" || method === "DELETE")) return { key: `${method} /channels/:id`, id: channel[1] };
  return undefined;
}

/** "POST /guilds/:guildId/channels", "/guilds/:id/channels" and "post /guilds/:x/channels" all name one route. */
function faultMatches(fault: RestFault, method: string, routeKey: string): boolean {
  if (fault.method.toUpperCase() !== method) return false;
  const template = (route: string) => route.trim().replace(/^[A-Za-z]+\s+/, "").replace(/:[A-Za-z_]+/g, ":id").replace(/\/+$/, "");
  return template(fault.route) === template(routeKey);
}

function auditReason(request: IncomingMessage): string | null {
  const header = request.headers["x-audit-log-reason"];
  if (typeof header !== "string") return null;
  try {
    return decodeURIComponent(header);
  } catch {
    return header;
  }
}

function rateLimitHeaders(key: string, bucket: Bucket): Record<string, string> {
  const resetAfter = Math.max(0, (bucket.resetAt - Date.now()) / 1000);
  return {
    "X-RateLimit-Limit": String(BUCKET_LIMIT),
    "X-RateLimit-Remaining": String(Math.max(0, bucket.remaining)),
    "X-RateLimit-Reset": (bucket.resetAt / 1000).toFixed(3),
    "X-RateLimit-Reset-After": resetAfter.toFixed(3),
    "X-RateLimit-Bucket": Buffer.from(key).toString("hex").slice(0, 32),
  };
}

/** Discord's 50035 shape: errors nested by field, each with `_errors: [{code, message}]`. */
function invalidFormBody(error: z.ZodError): unknown {
  const errors: Record<string, unknown> = {};
  for (const issue of error.issues) {
    const code = ERROR_CODE_FOR_ISSUE[issue.code] ?? "BASE_TYPE_INVALID";
    errors[String(issue.path[0] ?? "_body")] = { _errors: [{ code, message: issue.message }] };
  }
  return { code: 50035, message: "Invalid Form Body", errors };
}

export function reply(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "Content-Type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

/** Returned by readJson for a body that is not JSON (or is too large to be a sensible request). */
export const INVALID_JSON: unique symbol = Symbol("invalid JSON");

export async function readJson(request: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) return INVALID_JSON;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return INVALID_JSON;
  }
}
