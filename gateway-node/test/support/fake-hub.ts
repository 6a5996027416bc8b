import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  InternalEventsBody,
  internalEventList,
  MAX_INTERNAL_BODY_BYTES,
  verifyHubSignature,
  type IdentifiedInternalEvent,
} from "../../../protocol/index.js";

export const HUB_SECRET = "gateway-test-hub-secret-0123456789";

/**
 * Stands in for the Worker's /internal/events: verifies the signature, parses the body with the real schema,
 * dedupes by id, and can be taken down (connection refused) or made to answer with an error status.
 */
export class FakeHub {
  readonly accepted: IdentifiedInternalEvent[] = [];
  /** Every request, with the guilds its events were for (the real edge hands each guild's events to that guild's hub). */
  readonly posts: Array<{ status: number; count: number; guilds: string[] }> = [];
  duplicates = 0;
  failWith: number | undefined;
  /** When set, `failWith` hits only requests for this guild: one guild's hub failing while the others answer. */
  failGuild: string | undefined;
  /** Decides each post's status before anything else (undefined: answer normally). */
  onPost: (() => number | undefined) | undefined;
  /** At most this many events per request, else 413 (the real hub's limit is bytes). */
  maxEventsPerPost = Infinity;
  /** Events the hub refuses as invalid (400), like a schema the gateway does not match. */
  rejectIf: ((event: IdentifiedInternalEvent) => boolean) | undefined;
  /** Answers this late (a slow hub). */
  delayMs = 0;
  /** Ids that arrived again with different content: a translation that is not stable across restarts. */
  readonly idConflicts: string[] = [];
  private readonly contentById = new Map<string, string>();
  /** The newest gateway epoch seen per guild; older ones are refused 409, as each guild's hub does. */
  readonly leaseEpochs = new Map<string, number>();
  private readonly seen = new Set<string>();
  private server: Server | undefined;
  port = 0;

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}/internal/events`;
  }

  async start(port = 0): Promise<void> {
    this.server = createServer((request, response) => {
      if (request.method === "GET" && request.url === "/health") return void response.end(JSON.stringify({ ok: true }));
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => void this.handle(request.headers, Buffer.concat(chunks).toString("utf8")).then(async ({ status, body }) => {
        if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
        response.writeHead(status, { "Content-Type": "application/json" });
        response.end(JSON.stringify(body));
      }));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Refuses connections until start() again on the same port. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(headers: NodeJS.Dict<string | string[]>, body: string): Promise<{ status: number; body: unknown }> {
    const check = await verifyHubSignature(HUB_SECRET, String(headers["x-hub-timestamp"] ?? ""), String(headers["x-hub-signature"] ?? ""), body);
    if (!check.ok) return this.answer(401, { error: "unauthorized", message: check.reason }, 0);
    if (Buffer.byteLength(body) > MAX_INTERNAL_BODY_BYTES) return this.answer(413, { error: "payload_too_large" }, 0);
    const parsed = InternalEventsBody.safeParse(JSON.parse(body));
    const forGuild = this.failGuild === undefined || (parsed.success && internalEventList(parsed.data).some((event) => event.payload.guildId === this.failGuild));
    const forced = this.onPost?.() ?? (forGuild ? this.failWith : undefined);
    if (forced) return this.answer(forced, { error: "internal" }, 0);
    if (!parsed.success) return this.answer(400, { error: "invalid_input", message: parsed.error.message }, 0);
    const lease = "events" in parsed.data ? parsed.data.gateway : undefined;
    const events = internalEventList(parsed.data);
    const guilds = [...new Set(events.map((event) => event.payload.guildId))];
    if (lease && guilds.some((guild) => lease.epoch < (this.leaseEpochs.get(guild) ?? -1))) return this.answer(409, { error: "superseded" }, 0, guilds);
    if (lease) for (const guild of guilds) this.leaseEpochs.set(guild, lease.epoch);
    if (events.length > this.maxEventsPerPost) return this.answer(413, { error: "payload_too_large" }, 0);
    if (events.some((event) => this.rejectIf?.(event))) return this.answer(400, { error: "invalid_input" }, 0);
    let duplicates = 0;
    for (const event of events) {
      const { id, ...content } = event;
      const known = this.contentById.get(id);
      if (known !== undefined && known !== JSON.stringify(content)) this.idConflicts.push(id);
      this.contentById.set(id, JSON.stringify(content));
      if (event.id && this.seen.has(event.id)) {
        duplicates++;
        continue;
      }
      if (event.id) this.seen.add(event.id);
      this.accepted.push(event);
    }
    this.duplicates += duplicates;
    return this.answer(200, { ok: true, accepted: events.length - duplicates, duplicates }, events.length, guilds);
  }

  private answer(status: number, body: unknown, count: number, guilds: string[] = []): { status: number; body: unknown } {
    this.posts.push({ status, count, guilds });
    return { status, body };
  }

  /** App events in order, as `event:user@channel` strings, for compact assertions; only one guild's when given. */
  summary(guildId?: string): string[] {
    return this.accepted.filter((e) => guildId === undefined || e.payload.guildId === guildId).map((e) => {
      if (e.event === "guild.sync") return `guild.sync:${e.payload.voiceStates.length}`;
      const p = e.payload as { channelId: string; userId?: string };
      return `${e.event}:${p.userId ? `${p.userId}@` : ""}${p.channelId}`;
    });
  }
}
