import { vi } from "vitest";
import { TEST_BOT_TOKEN, TEST_DISCORD_API_BASE } from "./bindings.js";

export interface RecordedCall {
  method: string;
  path: string;
  auditReason: string | null;
  authorization: string | null;
  body: unknown;
}

type ScriptedReply = { status: number; body: unknown; headers?: Record<string, string> };

let nextChannelId = 300000000000000000n;

/**
 * A stand-in for Discord's REST API behind the Worker's outbound fetch: creates and deletes channels, records
 * every call, and plays scripted failures (429, 403, 404, 500) first when a test queues them.
 */
export class DiscordFake {
  readonly calls: RecordedCall[] = [];
  readonly channels = new Map<string, { id: string; name: string; user_limit: number; parent_id: string | null }>();
  private readonly scripted: ScriptedReply[] = [];
  /** Resolves pending creates only when a test releases them, to make races deterministic. */
  hold: Promise<void> | undefined;
  /** The bot token Discord accepts; a rotation changes it before the edge has the new one. */
  botToken = TEST_BOT_TOKEN;

  /** The id the next created channel gets, for a test that has the gateway announce it before the create returns. */
  static nextChannelId(): string {
    return String(nextChannelId);
  }

  script(...replies: ScriptedReply[]): void {
    this.scripted.push(...replies);
  }

  install(): void {
    const original = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      if (!request.url.startsWith(TEST_DISCORD_API_BASE)) return original(input, init);
      return this.reply(request);
    });
  }

  /** Answers one request to Discord's REST API (install() routes the Worker's fetches here). */
  async reply(request: Request): Promise<Response> {
    const path = request.url.slice(TEST_DISCORD_API_BASE.length);
    const text = await request.text();
    this.calls.push({
      method: request.method,
      path,
      auditReason: request.headers.get("X-Audit-Log-Reason"),
      authorization: request.headers.get("Authorization"),
      body: text ? JSON.parse(text) : undefined,
    });
    if (this.hold) await this.hold;
    const scripted = this.scripted.shift();
    if (scripted) return Response.json(scripted.body, { status: scripted.status, headers: scripted.headers });
    if (request.headers.get("Authorization") !== `Bot ${this.botToken}`) {
      return Response.json({ message: "401: Unauthorized", code: 0 }, { status: 401 });
    }
    const create = /^\/guilds\/(\d+)\/channels$/.exec(path);
    if (create && request.method === "POST") {
      const body = JSON.parse(text) as { name: string; user_limit?: number; parent_id?: string };
      const channel = { id: String(nextChannelId++), name: body.name, user_limit: body.user_limit ?? 0, parent_id: body.parent_id ?? null };
      this.channels.set(channel.id, channel);
      return Response.json({ ...channel, type: 2, guild_id: create[1] }, { status: 201 });
    }
    const remove = /^\/channels\/(\d+)$/.exec(path);
    if (remove && request.method === "DELETE") {
      const channel = this.channels.get(remove[1]!);
      if (!channel) return Response.json({ message: "Unknown Channel", code: 10003 }, { status: 404 });
      this.channels.delete(channel.id);
      return Response.json({ ...channel, type: 2 });
    }
    return Response.json({ message: "404: Not Found", code: 0 }, { status: 404 });
  }
}
