import type { IncomingMessage, ServerResponse } from "node:http";
import { ChannelType } from "discord-api-types/v10";
import { z } from "zod";
import type { SimWorld } from "./world.js";

export interface RestFault {
  method: string;
  /** e.g. "POST /guilds/:id/channels" */
  route: string;
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

const BUCKET_LIMIT = 50;
const BUCKET_WINDOW_MS = 10_000;

const CreateChannelBody = z.object({
  name: z.string().min(1).max(100),
  type: z.number().int().optional(),
  parent_id: z.string().regex(/^\d{17,20}$/).nullable().optional(),
  user_limit: z.number().int().min(0).max(99).optional(),
});

/**
 * Discord REST v10 for the calls this project makes: the gateway URL, creating and deleting channels. Bot token
 * checked, Discord's error bodies and codes, X-RateLimit-* headers with a real bucket, and scripted faults.
 */
export class SimRest {
  readonly auditLog: Array<{ method: string; path: string; reason: string | null }> = [];
  private readonly faults: Array<RestFault & { left: number }> = [];
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly world: SimWorld,
    private readonly options: {
      botToken: string;
      gatewayUrl: () => string;
      sessionStartLimit: { total: number; remaining: number; resetAfterMs: number; maxConcurrency: number };
    },
  ) {}

  scriptFault(fault: RestFault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  async handle(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    const method = request.method ?? "GET";
    const route = routeOf(method, path);
    if (!route) return reply(response, 404, { message: "404: Not Found", code: 0 });
    if (request.headers.authorization !== `Bot ${this.options.botToken}`) {
      return reply(response, 401, { message: "401: Unauthorized", code: 0 });
    }
    const bucket = this.take(route.key);
    const headers = rateLimitHeaders(route.key, bucket);
    const fault = this.faults.find((f) => f.method === method && f.route === route.key && f.left > 0);
    if (fault) {
      fault.left--;
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (fault.status === 429) return this.rateLimited(response, headers, fault.retryAfterS ?? 1, fault.body);
      return reply(response, fault.status, fault.body ?? { message: "Scripted failure", code: 0 }, headers);
    }
    if (bucket.remaining < 0) return this.rateLimited(response, headers, Math.max(0.001, (bucket.resetAt - Date.now()) / 1000));

    const reason = request.headers["x-audit-log-reason"];
    switch (route.key) {
      case "GET /gateway/bot":
        return reply(response, 200, {
          url: this.options.gatewayUrl(),
          shards: 1,
          session_start_limit: {
            total: this.options.sessionStartLimit.total,
            remaining: this.options.sessionStartLimit.remaining,
            reset_after: this.options.sessionStartLimit.resetAfterMs,
            max_concurrency: this.options.sessionStartLimit.maxConcurrency,
          },
        }, headers);
      case "POST /guilds/:id/channels": {
        if (route.id !== this.world.guildId) return reply(response, 404, { message: "Unknown Guild", code: 10004 }, headers);
        const body = CreateChannelBody.safeParse(await readJson(request));
        if (!body.success) return reply(response, 400, invalidFormBody(body.error), headers);
        this.auditLog.push({ method, path, reason: typeof reason === "string" ? decodeURIComponent(reason) : null });
        const channel = this.world.createChannel({
          name: body.data.name,
          type: body.data.type ?? ChannelType.GuildText,
          parentId: body.data.parent_id ?? null,
          userLimit: body.data.user_limit,
        });
        return reply(response, 201, channel, headers);
      }
      case "DELETE /channels/:id": {
        const channel = this.world.deleteChannel(route.id!);
        if (!channel) return reply(response, 404, { message: "Unknown Channel", code: 10003 }, headers);
        this.auditLog.push({ method, path, reason: typeof reason === "string" ? decodeURIComponent(reason) : null });
        return reply(response, 200, channel, headers);
      }
    }
  }

  private rateLimited(response: ServerResponse, headers: Record<string, string>, retryAfterS: number, body?: unknown): void {
    reply(
      response,
      429,
      body ?? { message: "You are being rate limited.", retry_after: retryAfterS, global: false },
      { ...headers, "Retry-After": String(Math.ceil(retryAfterS)), "X-RateLimit-Scope": "user" },
    );
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

function routeOf(method: string, path: string): { key: string; id?: string } | undefined {
  if (method === "GET" && path === "/gateway/bot") return { key: "GET /gateway/bot" };
  const guildChannels = /^\/guilds\/(\d+)\/channels$/.exec(path);
  if (method === "POST" && guildChannels) return { key: "POST /guilds/:id/channels", id: guildChannels[1] };
  const channel = /^\/channels\/(\d+)$/.exec(path);
  if (method === "DELETE" && channel) return { key: "DELETE /channels/:id", id: channel[1] };
  return undefined;
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
    errors[String(issue.path[0] ?? "body")] = { _errors: [{ code: "BASE_TYPE_INVALID", message: issue.message }] };
  }
  return { code: 50035, message: "Invalid Form Body", errors };
}

export function reply(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "Content-Type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

export async function readJson(request: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return undefined;
  }
}
