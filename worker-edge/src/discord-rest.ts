import { z } from "zod";
import { ApiError } from "./errors.js";

const REQUEST_TIMEOUT_MS = 10_000;
/** The longest Discord rate limit we wait out inside one request; longer ones become 503 with Retry-After. */
const MAX_RATE_LIMIT_WAIT_MS = 5_000;
const GUILD_VOICE = 2;

const DiscordChannel = z.object({
  id: z.string(),
  name: z.string().nullable().optional(),
  parent_id: z.string().nullable().optional(),
  user_limit: z.number().optional(),
});
export type DiscordChannel = z.infer<typeof DiscordChannel>;

const DiscordErrorBody = z.object({ code: z.number(), message: z.string() }).partial();
const RateLimitBody = z.object({ retry_after: z.number() }).partial();

const DiscordCode = { unknownChannel: 10003, missingPermissions: 50013, maxChannels: 30013 } as const;

export interface DiscordRestOptions {
  apiBase: string;
  botToken: string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The two Discord calls the edge makes, with the bot token, an audit-log reason, a timeout and one honoured
 * retry on 429. Failures become ApiErrors with a safe message: never the token, never Discord's body.
 */
export class DiscordRest {
  constructor(private readonly options: DiscordRestOptions) {}

  async createVoiceChannel(
    guildId: string,
    input: { name: string; parentId?: string; userLimit: number },
    auditReason: string,
  ): Promise<DiscordChannel> {
    const body = { name: input.name, type: GUILD_VOICE, parent_id: input.parentId, user_limit: input.userLimit };
    const response = await this.request("POST", `/guilds/${guildId}/channels`, auditReason, body);
    if (!response.ok) throw await this.failure(response, "create the voice channel");
    const channel = DiscordChannel.safeParse(await response.json());
    if (!channel.success) throw new ApiError(502, "discord_error", "Discord returned an unexpected channel");
    return channel.data;
  }

  /** Deletes a channel; returns false when Discord no longer has it (already gone counts as ended). */
  async deleteChannel(channelId: string, auditReason: string): Promise<boolean> {
    const response = await this.request("DELETE", `/channels/${channelId}`, auditReason);
    if (response.ok) return true;
    if (response.status === 404) {
      const body = DiscordErrorBody.safeParse(await response.json().catch(() => ({})));
      if (body.success && (body.data.code === DiscordCode.unknownChannel || body.data.code === undefined)) return false;
    }
    throw await this.failure(response, "delete the voice channel");
  }

  private async request(method: string, path: string, auditReason: string, body?: unknown): Promise<Response> {
    const first = await this.send(method, path, auditReason, body);
    if (first.status !== 429) return first;
    const waitMs = await retryAfterMs(first);
    if (waitMs > MAX_RATE_LIMIT_WAIT_MS) throw rateLimited(waitMs);
    await (this.options.sleep ?? defaultSleep)(waitMs);
    const second = await this.send(method, path, auditReason, body);
    if (second.status === 429) throw rateLimited(await retryAfterMs(second));
    return second;
  }

  private async send(method: string, path: string, auditReason: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {
      Authorization: `Bot ${this.options.botToken}`,
      "X-Audit-Log-Reason": encodeURIComponent(auditReason),
      "User-Agent": "DiscordBot (spell-coven-realtime, 0.1.0)",
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    // A timer we clear, not AbortSignal.timeout: a pending timer would keep the guild's object awake for its length.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    try {
      const response = await (this.options.fetch ?? fetch)(`${this.options.apiBase}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort.signal,
      });
      // Read within the same deadline, so a stalled body cannot hang the caller either.
      return new Response(await response.arrayBuffer(), { status: response.status, headers: response.headers });
    } catch {
      throw new ApiError(502, "discord_error", "Discord could not be reached");
    } finally {
      clearTimeout(timer);
    }
  }

  private async failure(response: Response, action: string): Promise<ApiError> {
    const parsed = DiscordErrorBody.safeParse(await response.json().catch(() => ({})));
    const code = parsed.success ? parsed.data.code : undefined;
    if (code === DiscordCode.missingPermissions || response.status === 403) {
      return new ApiError(502, "discord_error", `Discord refused to ${action}: the bot lacks permission`);
    }
    if (code === DiscordCode.maxChannels) {
      return new ApiError(502, "discord_error", `Discord refused to ${action}: the server has too many channels`);
    }
    const detail = code === undefined ? `HTTP ${response.status}` : `Discord code ${code}`;
    return new ApiError(502, "discord_error", `Discord failed to ${action} (${detail})`);
  }
}

async function retryAfterMs(response: Response): Promise<number> {
  const body = RateLimitBody.safeParse(await response.clone().json().catch(() => ({})));
  const seconds = (body.success ? body.data.retry_after : undefined) ?? Number(response.headers.get("Retry-After") ?? 1);
  return Math.max(0, Math.ceil((Number.isFinite(seconds) ? seconds : 1) * 1000));
}

function rateLimited(waitMs: number): ApiError {
  return new ApiError(503, "discord_unavailable", "Discord is rate limiting this action; try again later", {
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  });
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
