import { DurableObject } from "cloudflare:workers";
import {
  CloseCode,
  parseJson,
  type AppEvent,
  type ClientAuth,
  type ClientRooms,
  type CreateRoomResponse,
  type EventEnvelope,
  type IdentifiedInternalEvent,
  type LeaseRefusal,
  type ObjectStats,
  type RoomsResponse,
} from "../../protocol/index.js";
import { edgeConfig, hubSecrets, type EdgeConfig } from "./config.js";
import { DiscordRest } from "./discord-rest.js";
import { ApiError } from "./errors.js";
import { socketGuild } from "./guilds.js";
import * as clock from "./clock.js";
import { errorFields, log } from "./log.js";
import { FirstAuthPolicy, RoomListPolicy, UserRates } from "./hub/admission.js";
import { AlarmSchedule } from "./hub/alarm.js";
import { admitSocket, readClientMessage } from "./hub/intake.js";
import { exchangeAuth } from "./hub/auth-exchange.js";
import { SCHEMA_VERSION } from "./hub/migrations.js";
import { closeOverdueSockets, nextIdleDeadline, nextSocketDeadline } from "./hub/deadlines.js";
import { cadenceMs, Coalescer } from "./hub/coalescer.js";
import { authOkMessage, broadcast, catchUp, type Outgoing } from "./hub/fanout.js";
import { publishDueMedia } from "./hub/media.js";
import { guildSync, reconcile } from "./hub/presence.js";
import { withRoomFilter } from "./hub/room-filter.js";
import { admitBatch, claimLease, grantOf, refusalOf, releaseLease, type Lease, type LeaseClaim, type LeaseRefusalDecision } from "./hub/lease.js";
import { RoomDesk } from "./hub/rooms.js";
import { failure, type CreateRoomRequest, type EndRoomRequest, type HubResult, type IngestOutcome, type LeaseOutcome } from "./hub/rpc.js";
import { publishToRelays, sendSnapshot, startLink } from "./hub/relay-links.js";
import { SocketIndex } from "./hub/socket-index.js";
import { closeSocket, isOpen, type LiveAttachment } from "./hub/sockets.js";
import { HubStore } from "./hub/store.js";
import { isMultiPart, receiveSyncPart } from "./hub/sync-parts.js";
import { readLinkRequest, RelayRequest, RELAY_LINK_PATH } from "./relay/link.js";


/**
 * One per guild: the single source of truth for its rooms and voice presence, the event sequence and replay
 * buffer, and the fan-out to hibernatable sockets, or to the relays that hold them (relay/link.ts). Events are
 * stored as they are published and flushed on a cadence (hub/coalescer.ts). Runtime hooks stay thin and never let
 * an error escape.
 */
export class GuildHub extends DurableObject<Env> {
  private readonly store: HubStore;
  private readonly sockets: SocketIndex;
  private readonly rooms: RoomDesk;
  private readonly coalescer: Coalescer<Outgoing>;
  /** Since this instance started: what an operator or a benchmark reads through POST /internal/stats. */
  private readonly counters = { events: 0, flushes: 0, sends: 0, relaySends: 0, tokensVerified: 0 };
  /**
   * Per-user rates, in memory: an eviction forgives what they held, but this object is evicted only after idling
   * (seconds without a request), and that idle time has refilled most of each burst anyway.
   */
  private readonly firstAuths = new UserRates(FirstAuthPolicy);
  private readonly roomLists = new UserRates(RoomListPolicy);
  /** Only it sets alarms. */
  private readonly deadlineAlarm = new AlarmSchedule(this.ctx.storage);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    try {
      this.store = new HubStore(ctx.storage);
    } catch (error) {
      log("error", "GuildHub could not migrate its storage", { objectId: ctx.id.toString(), ...errorFields(error) });
      throw error; // serving on a schema the code does not know would corrupt it
    }
    const { from, to } = this.store.schema;
    if (from < to) log("info", "GuildHub migrated its storage", { guildId: this.store.guildId, from, to });
    // A rollback: steps are additive, so this release still runs on what a later one added.
    if (from > SCHEMA_VERSION) log("warn", "GuildHub storage is newer than this release", { guildId: this.store.guildId, from, known: SCHEMA_VERSION });
    this.sockets = new SocketIndex(() => ctx.getWebSockets());
    this.coalescer = new Coalescer({
      flush: (outgoing) => this.flush(outgoing),
      // Relays count as one recipient each: their own audiences are theirs to pace.
      cadenceMs: () => cadenceMs(this.config.FLUSH_CADENCE_MS, this.sockets.size + this.sockets.relayLinks().size),
      now: clock.now,
    });
    this.rooms = new RoomDesk({
      store: this.store,
      guildId: () => this.guildId,
      discord: () => this.discord(),
      publish: (events, now) => this.publish(events, now),
      roomsChanged: () => this.deadlineAlarm.atMost(nextIdleDeadline(this.store, this.idleTtlMs)),
    });
    // Answered by the runtime itself, so a heartbeat never wakes a hibernated hub.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  private get config(): EdgeConfig {
    return edgeConfig(this.env);
  }

  private get guildId(): string {
    return this.store.guildId ?? this.config.PRIMARY_GUILD_ID;
  }

  // --- runtime hooks

  override async fetch(request: Request): Promise<Response> {
    try {
      return await this.acceptSocket(request);
    } catch (error) {
      log("error", "GuildHub fetch failed", { guildId: this.guildId, ...errorFields(error) });
      return Response.json({ error: "internal", message: "internal error" }, { status: 500 });
    }
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    try {
      if (this.sockets.attachment(ws)?.phase === "relay") return this.onRelayRequest(ws, message);
      await this.onClientMessage(ws, message);
    } catch (error) {
      log("error", "GuildHub webSocketMessage failed", { guildId: this.guildId, ...errorFields(error) });
      closeSocket(ws, 1011, "internal error");
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      const attachment = this.sockets.attachment(ws);
      if (attachment?.phase === "relay") log("info", "GuildHub relay unlinked", { guildId: this.guildId, relay: attachment.relay, code });
      this.sockets.forget(ws);
    } catch (error) {
      log("error", "GuildHub webSocketClose failed", { guildId: this.guildId, ...errorFields(error) });
    }
    closeSocket(ws, code, reason); // completes the closing handshake
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("warn", "GuildHub webSocketError", { guildId: this.guildId, ...errorFields(error) });
    try {
      this.sockets.forget(ws);
    } catch (failure) {
      log("error", "GuildHub webSocketError failed", { guildId: this.guildId, ...errorFields(failure) });
    }
    closeSocket(ws, 1011);
  }

  override async alarm(): Promise<void> {
    this.deadlineAlarm.fired();
    const firedAt = clock.now();
    try {
      await this.onDeadlines(firedAt);
    } catch (error) {
      log("error", "GuildHub alarm failed", { guildId: this.guildId, ...errorFields(error) });
      await this.deadlineAlarm.atMost(clock.now() + 5_000, firedAt); // try again rather than leave deadlines unenforced
    }
  }

  // --- RPC from the Worker

  async ingest(guildId: string, events: IdentifiedInternalEvent[], sender?: LeaseClaim): Promise<IngestOutcome> {
    this.bindGuild(guildId);
    const now = clock.now();
    const admission = admitBatch(this.store.lease, sender, events, now);
    if (admission.kind === "refused") return { kind: "refused", refusal: this.refuseGateway(admission, sender, now) };
    if (admission.kind === "granted") this.holdLease(admission.lease);
    let accepted = 0;
    let duplicates = 0;
    let refused: ApiError | undefined;
    const produced: AppEvent[] = [];
    for (const event of events) {
      // One transaction per event: its effects and the record that it was received land together.
      const outcome = this.store.transaction(() => this.receive(event, now));
      if (outcome === "duplicate") duplicates++;
      else if (outcome === "orphaned") {
        refused = orphanedPart(event);
        log("warn", "GuildHub refused a sync part whose earlier parts it no longer holds", { guildId, id: event.id });
        break; // what came before it stands; the gateway resends the rest as duplicates
      } else {
        produced.push(...outcome);
        accepted++;
      }
    }
    this.publish(produced, now);
    await this.deadlineAlarm.atMost(this.nextStateDeadline());
    if (duplicates > 0) log("info", "GuildHub duplicate events", { guildId, duplicates });
    if (refused) return { kind: "failed", error: refused.toWire() };
    return { kind: "applied", accepted, duplicates, ...(admission.kind === "granted" ? { lease: grantOf(admission.lease, now) } : {}) };
  }

  /** Applies one event, or says why not: a repeat of one already received, or a sync part that cannot complete. */
  private receive(event: IdentifiedInternalEvent, now: number): AppEvent[] | "duplicate" | "orphaned" {
    if (event.event === "guild.sync" && isMultiPart(event.payload)) {
      const part = receiveSyncPart(this.store, event.payload, now);
      if (part.kind === "complete") return guildSync(this.store, part.sync, now);
      if (part.kind === "duplicate" || part.kind === "orphaned") return part.kind;
      if (part.kind === "superseded") log("info", "GuildHub dropped a sync older than the one applied", { guildId: this.guildId, syncId: event.payload.part.syncId });
      return [];
    }
    if (this.store.hasSeen(event.id)) return "duplicate";
    const produced = reconcile(this.store, event, now);
    this.store.markSeen(event.id, now);
    return produced;
  }



  /** A gateway renews its lease while idle, or releases it as it stops (see hub/lease.ts). */
  async gatewayLease(guildId: string, gateway: LeaseClaim, release: boolean): Promise<LeaseOutcome> {
    this.bindGuild(guildId);
    const now = clock.now();
    const decision = release ? releaseLease(this.store.lease, gateway, now) : claimLease(this.store.lease, gateway, now);
    if (decision.kind === "refused") return { kind: "refused", refusal: this.refuseGateway(decision, gateway, now) };
    this.holdLease(decision.lease);
    if (decision.kind === "released") log("info", "GuildHub lease released", { guildId, holder: gateway.instance, term: decision.lease.term });
    return decision.kind === "released" ? { kind: "granted" } : { kind: "granted", lease: grantOf(decision.lease, now) };
  }

  private holdLease(lease: Lease): void {
    const before = this.store.lease;
    if (before?.term !== lease.term) log("info", "GuildHub lease granted", { guildId: this.guildId, holder: lease.holder, term: lease.term, previous: before?.holder });
    this.store.lease = lease;
  }

  private refuseGateway(decision: LeaseRefusalDecision, sender: LeaseClaim | undefined, now: number): LeaseRefusal {
    if (decision.lease) this.holdLease(decision.lease); // sync_required: the term is the sender's, to begin with a sync
    const refusal = refusalOf(decision, now);
    // A standby asks every few seconds: routine. Fencing and new terms are worth a line.
    log(refusal.error === "lease_held" ? "debug" : "info", "GuildHub refused a gateway", { guildId: this.guildId, instance: sender?.instance, term: sender?.term, error: refusal.error, retryAfterMs: refusal.retryAfterMs });
    return refusal;
  }

  /** Counters since this instance started, and the relays linked now. */
  async stats(guildId: string): Promise<ObjectStats> {
    this.bindGuild(guildId);
    const relays = [...this.sockets.relayLinks().keys()];
    return { name: guildId, role: "hub", sockets: this.sockets.size, relays, ...this.counters };
  }

  async snapshot(guildId: string): Promise<RoomsResponse> {
    this.bindGuild(guildId);
    return { guildId, seq: this.store.seq, rooms: this.store.snapshotRooms(), status: this.store.guildStatus };
  }

  /** GET /rooms for a user: the snapshot, within the user's rate (each one costs this object's thread). */
  async listRooms(guildId: string, userId: string): Promise<HubResult<RoomsResponse>> {
    this.bindGuild(guildId);
    const waitSeconds = this.roomLists.take(userId, clock.now());
    if (waitSeconds > 0) {
      return failure(new ApiError(429, "rate_limited", "listing rooms too often; slow down", { retryAfterSeconds: Math.ceil(waitSeconds) }));
    }
    return { ok: true, value: await this.snapshot(guildId) };
  }

  async createRoom(request: CreateRoomRequest): Promise<HubResult<CreateRoomResponse>> {
    this.bindGuild(request.guildId);
    return this.rooms.create(request);
  }

  async endRoom(request: EndRoomRequest): Promise<HubResult<{ ok: true }>> {
    this.bindGuild(request.guildId);
    return this.rooms.end(request);
  }

  // --- sockets

  private async acceptSocket(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "invalid_input", message: "expected a WebSocket upgrade" }, { status: 426 });
    }
    this.bindGuild(socketGuild(new URL(request.url), this.config));
    if (new URL(request.url).pathname === RELAY_LINK_PATH) return this.acceptRelayLink(request);
    const admitted = admitSocket(this.ctx, this.sockets, request.headers);
    if (admitted.refused !== undefined) {
      log("warn", "GuildHub refused socket", { guildId: this.guildId, reason: admitted.refused });
      return admitted.response;
    }
    await this.deadlineAlarm.atMost(admitted.authDeadline);
    return admitted.response;
  }

  private async onClientMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    // Sent before the client saw the close the hub sent it (a 4429, an expiry): an ordinary race, nothing to do.
    if (!isOpen(ws)) return;
    const read = readClientMessage(raw);
    if ("close" in read) return this.reject(ws, read.close.code, read.close.reason);
    if (read.message.type === "rooms") return this.changeRooms(ws, read.message);
    await this.authenticate(ws, read.message);
  }

  /** Replaces a live socket's room filter, then sends a snapshot at the current seq so the client's state is exact. */
  private changeRooms(ws: WebSocket, message: ClientRooms): void {
    const changed = withRoomFilter(this.sockets.attachment(ws), message.rooms, clock.now());
    if ("close" in changed) return this.reject(ws, changed.close.code, changed.close.reason);
    this.coalescer.flushNow(); // what is pending goes under the old filter, before the snapshot
    this.sockets.set(ws, changed.attachment);
    catchUp(ws, this.store, changed.attachment, undefined);
  }

  private async authenticate(ws: WebSocket, auth: ClientAuth): Promise<void> {
    this.counters.tokensVerified++;
    const goLive = (socket: WebSocket, attachment: LiveAttachment) => {
      // Pending events go out first: the catch-up below covers every seq so far, and a flush after the socket is
      // indexed would send some of them twice.
      this.coalescer.flushNow();
      this.sockets.set(socket, attachment);
    };
    const context = { sockets: this.sockets, config: this.config, guildId: this.guildId, firstAuths: this.firstAuths, goLive };
    const outcome = await exchangeAuth(context, ws, auth, clock.now());
    if (outcome.kind === "gone") return;
    if (outcome.kind === "refused") return this.reject(ws, outcome.code, outcome.reason);
    const live = outcome.attachment;
    await this.deadlineAlarm.atMost(live.expiresAt);
    if (!isOpen(ws)) return;

    const seq = this.store.seq;
    ws.send(authOkMessage(this.guildId, seq));
    const resumed = outcome.refresh ? "refresh" : catchUp(ws, this.store, live, auth.since) ? "replay" : "snapshot";
    log("info", "GuildHub socket live", { guildId: this.guildId, conn: live.conn, userId: live.userId, resumed });
  }

  // --- relays (relay/link.ts)

  /** A relay links to this hub: signed, hibernatable, one per relay; it starts with the hello and the gap fill. */
  private async acceptRelayLink(request: Request): Promise<Response> {
    const link = await readLinkRequest(request, hubSecrets(this.config), this.guildId);
    if (!link) {
      log("warn", "GuildHub refused a relay link", { guildId: this.guildId });
      return Response.json({ error: "unauthorized", message: "relay link refused" }, { status: 401 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, ["relay"]);
    const earlier = this.sockets.relayLinks().get(link.relay);
    if (earlier) closeSocket(earlier, 1000, "relay linked again");
    this.coalescer.flushNow(); // the link starts after every event sent so far
    this.sockets.set(server, { phase: "relay", relay: link.relay });
    startLink(server, this.store, link.since);
    log("info", "GuildHub relay linked", { guildId: this.guildId, relay: link.relay, since: link.since, seq: this.store.seq });
    return new Response(null, { status: 101, webSocket: client });
  }

  /** A relay asks for a snapshot: answered in order on its link, at the seq of the last event sent there. */
  private onRelayRequest(ws: WebSocket, raw: string | ArrayBuffer): void {
    const request = RelayRequest.safeParse(typeof raw === "string" ? parseJson(raw) : undefined);
    if (!request.success) return closeSocket(ws, CloseCode.badMessage, "malformed relay request");
    this.coalescer.flushNow();
    if (isOpen(ws)) sendSnapshot(ws, this.store); // a link closed meanwhile is linked again, and asks again
  }

  /** Closes a socket for a reason the client can act on, and logs why (never the token). */
  private reject(ws: WebSocket, code: number, reason: string): void {
    const attachment = this.sockets.attachment(ws);
    log("info", "GuildHub closed socket", { guildId: this.guildId, conn: attachment && "conn" in attachment ? attachment.conn : undefined, code, reason });
    this.sockets.forget(ws);
    closeSocket(ws, code, reason);
  }

  /** Gives each event the next seq and records it in the replay buffer at once; the coalescer sends it. */
  private publish(events: AppEvent[], now: number): void {
    if (events.length === 0) return;
    const outgoing: Outgoing[] = events.map((event) => {
      const seq = this.store.seq + 1;
      this.store.seq = seq;
      const message = JSON.stringify({ v: 1, type: "event", ...event, ts: now, seq } as EventEnvelope);
      this.store.appendEvent(seq, now, event, message);
      return { event, message };
    });
    this.store.prune(now);
    this.counters.events += outgoing.length;
    this.coalescer.add(outgoing);
  }

  /** Sends what was published since the last flush: to this hub's own sockets, and once to each relay. */
  private flush(outgoing: Outgoing[]): void {
    try {
      const sockets = broadcast(this.sockets, outgoing, clock.now());
      const relays = publishToRelays(this.sockets.relayLinks(), outgoing.map((o) => o.message));
      for (const ws of relays.closed) this.sockets.forget(ws);
      this.counters.flushes++;
      this.counters.sends += sockets.sends;
      this.counters.relaySends += relays.sends;
      // One line per flush: what an operator charts and pages on (Workers Logs can query these fields; the
      // runtime's own metrics give its duration, as clocks do not advance during a synchronous loop in workerd).
      log("info", "GuildHub flushed", {
        guildId: this.guildId, events: outgoing.length, seq: this.store.seq, sockets: this.sockets.size, relays: relays.sends, sends: sockets.sends, shed: sockets.shed,
      });
    } catch (error) {
      log("error", "GuildHub flush failed", { guildId: this.guildId, events: outgoing.length, ...errorFields(error) });
    }
  }

  // --- deadlines: one alarm multiplexes auth timeouts, token expiries and idle rooms

  private async onDeadlines(firedAt: number): Promise<void> {
    closeOverdueSockets(this.ctx.getWebSockets(), this.sockets, clock.now());
    this.publishMedia(clock.now());
    await this.rooms.endIdle(this.idleTtlMs);
    this.store.prune(clock.now(), true);
    // Recomputed after every await: sockets accepted, rooms emptied and flags changed meanwhile have deadlines too.
    const next = Math.min(nextSocketDeadline(this.ctx.getWebSockets(), this.sockets), this.nextStateDeadline());
    await this.deadlineAlarm.atMost(next, firedAt);
  }

  /** Members' media windows that have ended: their flags, told once each (hub/media.ts). */
  private publishMedia(now: number): void {
    const events = this.store.transaction(() => publishDueMedia(this.store, this.guildId, now));
    this.publish(events, now);
  }

  /** The next deadline the guild's state sets: an idle room to end, or a media window to close. */
  private nextStateDeadline(): number {
    return Math.min(nextIdleDeadline(this.store, this.idleTtlMs), this.store.nextMediaWindowEnd());
  }

  private get idleTtlMs(): number {
    return this.config.ROOM_IDLE_TTL_SECONDS * 1000;
  }

  private discord(): DiscordRest {
    return new DiscordRest({ apiBase: this.config.DISCORD_API_BASE, botToken: this.config.DISCORD_BOT_TOKEN });
  }

  private bindGuild(guildId: string): void {
    if (this.store.guildId === undefined) this.store.guildId = guildId;
    else if (this.store.guildId !== guildId) throw new Error(`GuildHub for ${this.store.guildId} asked to serve ${guildId}`);
  }
}

function orphanedPart(event: IdentifiedInternalEvent): ApiError {
  return new ApiError(400, "invalid_input", `event ${event.id} is a sync part after parts the hub no longer holds; send a fresh guild.sync`);
}
