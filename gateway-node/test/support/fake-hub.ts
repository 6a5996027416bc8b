import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  InternalEventsBody,
  internalEventList,
  LeaseRequestBody,
  MAX_INTERNAL_BODY_BYTES,
  verifyHubSignature,
  type IdentifiedInternalEvent,
} from "../../../protocol/index.js";
import { admitBatch, claimLease, grantOf, LEASE_TTL_MS, refusalOf, releaseLease, type Lease, type LeaseRefusalDecision } from "../../../worker-edge/src/hub/lease.js";
import { ModelHub } from "./hub-model.js";

export const HUB_SECRET = "gateway-test-hub-secret-0123456789";

/** An applied batch: which gateway wrote which guild, under which term, at what hub time. */
export interface HubWrite {
  guildId: string;
  instance: string | undefined;
  term: number | undefined;
  at: number;
}

/**
 * Stands in for the Worker's /internal/events and /internal/lease: verifies the signature against the hub's clock,
 * parses bodies with the real schemas, decides each guild's lease with the hub's own lease module, dedupes by id,
 * and can be taken down (connection refused) or made to answer with an error status.
 */
export class FakeHub {
  readonly accepted: IdentifiedInternalEvent[] = [];
  /** What each guild's hub would publish to clients for what it accepted, in order (see ModelHub). */
  readonly published: Array<{ guildId: string; text: string }> = [];
  private readonly models = new Map<string, ModelHub>();
  /** Every request, with the guilds its events were for (the real edge hands each guild's events to that guild's hub). */
  readonly posts: Array<{ status: number; count: number; guilds: string[]; instance?: string; error?: string }> = [];
  duplicates = 0;
  failWith: number | undefined;
  /** When set, `failWith` hits only requests for this guild: one guild's hub failing while the others answer. */
  failGuild: string | undefined;
  /** Decides each request's status before anything else (undefined: answer normally), from the gateway that sent it. */
  onPost: ((request: { instance: string | undefined; guildId: string | undefined }) => number | undefined) | undefined;
  /** At most this many events per request, else 413 (the real hub's limit is bytes). */
  maxEventsPerPost = Infinity;
  /** Events the hub refuses as invalid (400), like a schema the gateway does not match. */
  rejectIf: ((event: IdentifiedInternalEvent) => boolean) | undefined;
  /** Answers this late (a slow hub). */
  delayMs = 0;
  /** Ids that arrived again with different content: a translation that is not stable across restarts. */
  readonly idConflicts: string[] = [];
  private readonly contentById = new Map<string, string>();
  /** Each guild's lease, as each guild's hub keeps it. */
  readonly leases = new Map<string, Lease>();
  /** The lease TTL this hub grants (the edge's is LEASE_TTL_MS; tests shrink it). */
  leaseTtlMs = LEASE_TTL_MS;
  /** The hub's clock against the machine's: the hub's clock alone decides expiry, and checks signatures. */
  clockOffsetMs = 0;
  /** Every applied batch, in order. */
  readonly writes: HubWrite[] = [];
  /** Lease requests (POST /internal/lease) with their status. */
  readonly leaseRequests: Array<{ status: number; guildId: string; instance: string; term: number; release: boolean }> = [];
  /** Answers as an edge of the previous release: no lease endpoint, and 409 `superseded` to a start time older than the newest. */
  previousRelease = false;
  /** Guilds this edge does not serve (not in its ALLOWED_GUILD_IDS): acknowledged with `served: false` and dropped, as the edge does. */
  readonly unserved = new Set<string>();
  private readonly newestEpochs = new Map<string, number>();
  /** The instance of the request being answered (handled synchronously after its signature check). */
  private sender: string | undefined;
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
      const route = request.url === "/internal/lease" ? this.handleLease : this.handle;
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => void route.call(this, request.headers, Buffer.concat(chunks).toString("utf8")).then(async ({ status, body }) => {
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

  /** The hub's clock. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  private async handle(headers: NodeJS.Dict<string | string[]>, body: string): Promise<{ status: number; body: unknown }> {
    const check = await verifyHubSignature(HUB_SECRET, String(headers["x-hub-timestamp"] ?? ""), String(headers["x-hub-signature"] ?? ""), body, this.now());
    this.sender = undefined;
    if (!check.ok) return this.answer(401, { error: "unauthorized", message: check.reason }, 0);
    if (Buffer.byteLength(body) > MAX_INTERNAL_BODY_BYTES) return this.answer(413, { error: "payload_too_large" }, 0);
    const parsed = InternalEventsBody.safeParse(JSON.parse(body));
    const forGuild = this.failGuild === undefined || (parsed.success && internalEventList(parsed.data).some((event) => event.payload.guildId === this.failGuild));
    const identity = parsed.success && "events" in parsed.data ? parsed.data.gateway : undefined;
    const sender = identity && { ...identity, signedAt: Number(headers["x-hub-timestamp"]) };
    this.sender = sender?.instance;
    const firstGuild = parsed.success ? internalEventList(parsed.data)[0]?.payload.guildId : undefined;
    const forced = this.onPost?.({ instance: sender?.instance, guildId: firstGuild }) ?? (forGuild ? this.failWith : undefined);
    if (forced) return this.answer(forced, { error: "internal" }, 0);
    if (!parsed.success) return this.answer(400, { error: "invalid_input", message: parsed.error.message }, 0);
    const events = internalEventList(parsed.data);
    const guilds = [...new Set(events.map((event) => event.payload.guildId))];
    if (events.length > this.maxEventsPerPost) return this.answer(413, { error: "payload_too_large" }, 0);
    if (events.some((event) => this.rejectIf?.(event))) return this.answer(400, { error: "invalid_input" }, 0);
    if (sender && guilds.length > 1) return this.answer(400, { error: "invalid_input", message: "one guild per leased batch" }, 0);
    if (this.unserved.has(guilds[0]!)) return this.answer(200, { ok: true, accepted: events.length, duplicates: 0, served: false }, events.length, guilds);
    let lease: Lease | undefined;
    if (this.previousRelease) {
      const newest = this.newestEpochs.get(guilds[0]!) ?? -1;
      if (sender?.epoch !== undefined && sender.epoch < newest) return this.answer(409, { error: "superseded", message: "a newer gateway serves this guild" }, 0, guilds);
      if (sender?.epoch !== undefined) this.newestEpochs.set(guilds[0]!, sender.epoch);
    } else {
      const now = this.now();
      const admission = admitBatch(this.leases.get(guilds[0]!), sender, events, now, this.leaseTtlMs);
      if (admission.kind === "refused") return this.refuse(guilds[0]!, admission, now, guilds);
      if (admission.kind === "granted") this.leases.set(guilds[0]!, (lease = admission.lease));
    }
    for (const guildId of guilds) this.writes.push({ guildId, instance: sender?.instance, term: lease?.term, at: this.now() });
    let duplicates = 0;
    for (const event of events) {
      const { id, ...content } = event;
      // Each guild's hub keeps its own ids, as each guild's Durable Object does.
      const key = `${event.payload.guildId}/${id}`;
      const known = this.contentById.get(key);
      if (known !== undefined && known !== JSON.stringify(content)) this.idConflicts.push(id);
      this.contentById.set(key, JSON.stringify(content));
      if (this.seen.has(key)) {
        duplicates++;
        continue;
      }
      this.seen.add(key);
      this.accepted.push(event);
      const model = this.models.get(event.payload.guildId) ?? new ModelHub();
      this.models.set(event.payload.guildId, model);
      for (const text of model.apply(event)) this.published.push({ guildId: event.payload.guildId, text });
    }
    this.duplicates += duplicates;
    const grant = lease && grantOf(lease, this.now());
    return this.answer(200, { ok: true, accepted: events.length - duplicates, duplicates, ...(grant ? { lease: grant } : {}) }, events.length, guilds);
  }

  private async handleLease(headers: NodeJS.Dict<string | string[]>, body: string): Promise<{ status: number; body: unknown }> {
    if (this.previousRelease) return { status: 404, body: { error: "not_found" } };
    const check = await verifyHubSignature(HUB_SECRET, String(headers["x-hub-timestamp"] ?? ""), String(headers["x-hub-signature"] ?? ""), body, this.now());
    if (!check.ok) return { status: 401, body: { error: "unauthorized", message: check.reason } };
    const parsed = LeaseRequestBody.safeParse(JSON.parse(body));
    if (!parsed.success) return { status: 400, body: { error: "invalid_input", message: parsed.error.message } };
    const { guildId, gateway, release = false } = parsed.data;
    const forced = this.onPost?.({ instance: gateway.instance, guildId }) ?? (this.failGuild === undefined || this.failGuild === guildId ? this.failWith : undefined);
    const record = (status: number) => this.leaseRequests.push({ status, guildId, instance: gateway.instance, term: gateway.term, release });
    if (forced) {
      record(forced);
      return { status: forced, body: { error: "internal" } };
    }
    if (this.unserved.has(guildId)) {
      record(200);
      return { status: 200, body: { ok: true, served: false } };
    }
    const now = this.now();
    const current = this.leases.get(guildId);
    const claim = { ...gateway, signedAt: Number(headers["x-hub-timestamp"]) };
    const decision = release ? releaseLease(current, claim, now) : claimLease(current, claim, now, this.leaseTtlMs);
    if (decision.kind === "refused") {
      record(409);
      return { status: 409, body: refusalOf(decision, now) };
    }
    this.leases.set(guildId, decision.lease);
    record(200);
    return { status: 200, body: { ok: true, ...(decision.kind === "granted" ? { lease: grantOf(decision.lease, now) } : {}) } };
  }

  private refuse(guildId: string, decision: LeaseRefusalDecision, now: number, guilds: string[]): { status: number; body: unknown } {
    if (decision.lease) this.leases.set(guildId, decision.lease);
    return this.answer(409, refusalOf(decision, now), 0, guilds);
  }

  /** Which gateway instance holds the guild now (undefined: free), by the hub's clock. */
  holder(guildId: string): { instance: string; term: number } | undefined {
    const lease = this.leases.get(guildId);
    return lease && lease.expiresAt > this.now() ? { instance: lease.holder, term: lease.term } : undefined;
  }

  private answer(status: number, body: unknown, count: number, guilds: string[] = []): { status: number; body: unknown } {
    const error = (body as { error?: string }).error;
    this.posts.push({ status, count, guilds, ...(this.sender ? { instance: this.sender } : {}), ...(error ? { error } : {}) });
    return { status, body };
  }

  /**
   * What clients were published, in order, as `event:user@channel` strings (and `guild.sync:<members>` where a whole
   * picture was applied), for compact assertions; only one guild's when given.
   */
  summary(guildId?: string): string[] {
    return this.published.filter((p) => guildId === undefined || p.guildId === guildId).map((p) => p.text);
  }

  /** Syncs applied to a guild (a multi-part one counts once, when its last part is in). */
  syncs(guildId?: string): number {
    return this.summary(guildId).filter((text) => text.startsWith("guild.sync:")).length;
  }
}
