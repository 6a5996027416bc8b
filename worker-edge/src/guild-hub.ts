import { DurableObject } from "cloudflare:workers";
import {
  AUTH_TIMEOUT_MS,
  ClientMessage,
  CloseCode,
  MAX_CLIENT_MESSAGE_BYTES,
  SocketLimits,
  parseJson,
  type AppEvent,
  type AuthOkMessage,
  type ClientAuth,
  type ClientRooms,
  type CreateRoomResponse,
  type EventEnvelope,
  type GatewayIdentity,
  type IdentifiedInternalEvent,
  type LeaseRefusal,
  type RoomsResponse,
} from "../../protocol/index.js";
import { AuthError, verifyAppToken } from "./auth.js";
import { edgeConfig, isMultiGuild, type EdgeConfig } from "./config.js";
import { DiscordRest } from "./discord-rest.js";
import { ApiError } from "./errors.js";
import { socketGuild } from "./guilds.js";
import { errorFields, log } from "./log.js";
import { closeOverdueSockets, dueIdleRooms, isDue, nextIdleDeadline, nextSocketDeadline } from "./hub/deadlines.js";
import { Audience } from "./hub/audience.js";
import { broadcast, catchUp, type Outgoing } from "./hub/fanout.js";
import { reconcile, roomCreated, roomDeleted } from "./hub/presence.js";
import { CreateRoomPolicy, takeToken } from "./hub/rate-limit.js";
import { withRoomFilter } from "./hub/room-filter.js";
import { admitBatch, claimLease, grantOf, refusalOf, releaseLease, type Lease, type LeaseRefusalDecision } from "./hub/lease.js";
import type { CreateRoomRequest, EndRoomRequest, HubResult, IngestOutcome, LeaseOutcome } from "./hub/rpc.js";
import { attachmentOf, closeSocket, connectionId, isOpen, setAttachment, SocketCensus, type LiveAttachment, type SocketAttachment } from "./hub/sockets.js";
import { HubStore } from "./hub/store.js";

const DEFAULT_ROOM_NAME = "Spell Coven room";
const ReauthPolicy = { capacity: SocketLimits.reauthBurst, refillPerSecond: 1000 / SocketLimits.reauthIntervalMs };

/**
 * One per guild: the single source of truth for its rooms and voice presence, the event sequence and replay
 * buffer, and the fan-out to hibernatable sockets. Runtime hooks stay thin and never let an error escape.
 */
export class GuildHub extends DurableObject<Env> {
  private readonly store: HubStore;
  private readonly census: SocketCensus;
  private readonly audience: Audience;
  /** Creates in flight per user+idempotency key, so racing duplicates share one Discord call. */
  private readonly creating = new Map<string, Promise<HubResult<CreateRoomResponse>>>();
  /** The alarm as this object last set or read it (null: none; undefined: unknown, read it). Only it sets alarms. */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new HubStore(ctx.storage.sql);
    this.census = new SocketCensus(() => ctx.getWebSockets());
    this.audience = new Audience(() => ctx.getWebSockets());
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
      await this.onClientMessage(ws, message);
    } catch (error) {
      log("error", "GuildHub webSocketMessage failed", { guildId: this.guildId, ...errorFields(error) });
      closeSocket(ws, 1011, "internal error");
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.census.forget(ws);
    this.audience.forget(ws);
    closeSocket(ws, code, reason); // completes the closing handshake
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("warn", "GuildHub webSocketError", { guildId: this.guildId, ...errorFields(error) });
    this.census.forget(ws);
    this.audience.forget(ws);
    closeSocket(ws, 1011);
  }

  override async alarm(): Promise<void> {
    this.alarmAt = undefined; // the runtime clears the alarm it fires
    const firedAt = Date.now();
    try {
      await this.onDeadlines(firedAt);
    } catch (error) {
      log("error", "GuildHub alarm failed", { guildId: this.guildId, ...errorFields(error) });
      await this.scheduleAlarm(Date.now() + 5_000, firedAt); // try again rather than leave deadlines unenforced
    }
  }

  // --- RPC from the Worker

  async ingest(guildId: string, events: IdentifiedInternalEvent[], sender?: GatewayIdentity): Promise<IngestOutcome> {
    this.bindGuild(guildId);
    const now = Date.now();
    const admission = admitBatch(this.store.lease, sender, events, now);
    if (admission.kind === "refused") return { kind: "refused", refusal: this.refuseGateway(admission, sender, now) };
    if (admission.kind === "granted") this.holdLease(admission.lease);
    let accepted = 0;
    let duplicates = 0;
    const produced: AppEvent[] = [];
    for (const event of events) {
      if (this.store.hasSeen(event.id)) {
        duplicates++;
        continue;
      }
      produced.push(...reconcile(this.store, event, now));
      this.store.markSeen(event.id, now);
      accepted++;
    }
    this.publish(produced, now);
    await this.scheduleAlarm(nextIdleDeadline(this.store, this.idleTtlMs));
    if (duplicates > 0) log("info", "GuildHub duplicate events", { guildId, duplicates });
    return { kind: "applied", accepted, duplicates, ...(admission.kind === "granted" ? { lease: grantOf(admission.lease, now) } : {}) };
  }

  /** A gateway renews its lease while idle, or releases it as it stops (see hub/lease.ts). */
  async gatewayLease(guildId: string, gateway: GatewayIdentity, release: boolean): Promise<LeaseOutcome> {
    this.bindGuild(guildId);
    const now = Date.now();
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

  private refuseGateway(decision: LeaseRefusalDecision, sender: GatewayIdentity | undefined, now: number): LeaseRefusal {
    if (decision.lease) this.holdLease(decision.lease); // sync_required: the term is the sender's, to begin with a sync
    const refusal = refusalOf(decision, now);
    // A standby asks every few seconds: routine. Fencing and new terms are worth a line.
    log(refusal.error === "lease_held" ? "debug" : "info", "GuildHub refused a gateway", { guildId: this.guildId, instance: sender?.instance, term: sender?.term, error: refusal.error, retryAfterMs: refusal.retryAfterMs });
    return refusal;
  }

  async snapshot(guildId: string): Promise<RoomsResponse> {
    this.bindGuild(guildId);
    return { guildId, seq: this.store.seq, rooms: this.store.snapshotRooms() };
  }

  async createRoom(request: CreateRoomRequest): Promise<HubResult<CreateRoomResponse>> {
    this.bindGuild(request.guildId);
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const stored = this.store.idempotentResult(request.userId, key);
      if (stored) return { ok: true, value: JSON.parse(stored) as CreateRoomResponse };
      const inFlight = this.creating.get(`${request.userId}\n${key}`);
      if (inFlight) return inFlight;
    }
    const refusal = this.admitCreate(request.userId, Date.now());
    if (refusal) return failure(refusal);
    const creation = this.createInDiscord(request);
    if (key === undefined) return creation;
    this.creating.set(`${request.userId}\n${key}`, creation);
    try {
      const result = await creation;
      if (result.ok) this.store.saveIdempotentResult(request.userId, key, JSON.stringify(result.value), Date.now());
      return result;
    } finally {
      this.creating.delete(`${request.userId}\n${key}`);
    }
  }

  async endRoom(request: EndRoomRequest): Promise<HubResult<{ ok: true }>> {
    this.bindGuild(request.guildId);
    const room = this.store.room(request.channelId);
    if (!room || room.creatorId === null) return failure(new ApiError(404, "not_found", "unknown room"));
    if (room.creatorId !== request.userId && !request.isAdmin) {
      return failure(new ApiError(403, "forbidden", "only the room's creator or an admin can end it"));
    }
    try {
      await this.discord().deleteChannel(request.channelId, `Spell Coven room ended by user ${request.userId}`);
    } catch (error) {
      return failureOf(error);
    }
    const now = Date.now();
    this.publish(roomDeleted(this.store, { guildId: request.guildId, channelId: request.channelId }, now), now);
    return { ok: true, value: { ok: true } };
  }

  // --- sockets

  private async acceptSocket(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "invalid_input", message: "expected a WebSocket upgrade" }, { status: 426 });
    }
    this.bindGuild(socketGuild(new URL(request.url), this.config));
    const { 0: client, 1: server } = new WebSocketPair();
    if (this.census.pendingCount() >= SocketLimits.pendingSockets) {
      // Completed only to say why: a browser cannot read an HTTP error on a WebSocket.
      server.accept();
      closeSocket(server, CloseCode.tooMany, "too many connections waiting for auth");
      log("warn", "GuildHub refused socket", { guildId: this.guildId, reason: "pending limit" });
      return new Response(null, { status: 101, webSocket: client });
    }
    this.ctx.acceptWebSocket(server);
    const authDeadline = Date.now() + AUTH_TIMEOUT_MS;
    this.setSocket(server, { phase: "pending", conn: connectionId(), authDeadline });
    await this.scheduleAlarm(authDeadline);
    return new Response(null, { status: 101, webSocket: client });
  }

  private async onClientMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const size = typeof raw === "string" ? new TextEncoder().encode(raw).byteLength : raw.byteLength;
    if (size > MAX_CLIENT_MESSAGE_BYTES) return this.reject(ws, CloseCode.tooLarge, "message too large");
    if (typeof raw !== "string") return this.reject(ws, CloseCode.badMessage, "binary messages are not supported");
    const message = ClientMessage.safeParse(parseJson(raw));
    if (!message.success) return this.reject(ws, CloseCode.badMessage, "malformed message");
    if (message.data.type === "rooms") return this.changeRooms(ws, message.data);
    await this.authenticate(ws, message.data);
  }

  /** Replaces a live socket's room filter, then sends a snapshot at the current seq so the client's state is exact. */
  private changeRooms(ws: WebSocket, message: ClientRooms): void {
    const current = attachmentOf(ws);
    if (current?.phase !== "live") return this.reject(ws, CloseCode.badMessage, "authenticate first");
    const now = Date.now();
    if (current.expiresAt <= now) return this.reject(ws, CloseCode.unauthorized, "token expired");
    const changed = withRoomFilter(current, message.rooms, now);
    if (!("attachment" in changed)) return this.reject(ws, CloseCode.tooMany, "changing rooms too often");
    this.setSocket(ws, changed.attachment);
    catchUp(ws, this.store, changed.attachment, undefined);
  }

  private async authenticate(ws: WebSocket, auth: ClientAuth): Promise<void> {
    const previous = attachmentOf(ws);
    const now = Date.now();
    let reauth;
    if (previous?.phase === "live") {
      // Each auth is a signature check and an alarm write on the guild's one thread: bound how often.
      reauth = takeToken(previous.reauth, ReauthPolicy, now);
      if (reauth.retryAfterSeconds > 0) return this.reject(ws, CloseCode.tooMany, "re-authenticating too often");
    }
    let user;
    try {
      user = await verifyAppToken(auth.token, this.config);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      return this.reject(ws, CloseCode.unauthorized, error.message);
    }
    // Verifying awaits: under load the auth deadline may have closed the socket meanwhile.
    if (!isOpen(ws)) return;
    if (isMultiGuild(this.config) && !user.guilds.includes(this.guildId)) {
      return this.reject(ws, CloseCode.guildNotAllowed, "guild not allowed for this token");
    }
    if (previous?.phase === "live" && previous.userId !== user.userId) {
      return this.reject(ws, CloseCode.unauthorized, "a refreshed token must be for the same user");
    }
    if (previous?.phase !== "live" && this.census.userSocketCount(user.userId, ws) >= SocketLimits.socketsPerUser) {
      return this.reject(ws, CloseCode.tooMany, "too many connections for this user");
    }
    // Read again after verifying: a room filter change may have landed meanwhile.
    const latest = attachmentOf(ws);
    const batch = auth.batch ?? (previous?.phase === "live" ? previous.batch : undefined);
    const live: LiveAttachment = {
      phase: "live",
      conn: previous?.conn ?? connectionId(),
      userId: user.userId,
      expiresAt: user.expiresAt * 1000,
      rooms: auth.rooms ?? (latest?.phase === "live" ? latest.rooms : undefined),
      ...(batch ? { batch } : {}),
      reauth: reauth?.bucket ?? { tokens: ReauthPolicy.capacity, at: now },
      ...(latest?.phase === "live" && latest.roomsBucket ? { roomsBucket: latest.roomsBucket } : {}),
    };
    this.setSocket(ws, live);
    await this.scheduleAlarm(live.expiresAt);
    if (!isOpen(ws)) return;

    const seq = this.store.seq;
    ws.send(JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId: this.guildId, seq } satisfies AuthOkMessage));
    const resumed = previous?.phase === "live" ? "refresh" : catchUp(ws, this.store, live, auth.since) ? "replay" : "snapshot";
    log("info", "GuildHub socket live", { guildId: this.guildId, conn: live.conn, userId: user.userId, resumed });
  }

  private setSocket(ws: WebSocket, attachment: SocketAttachment): void {
    setAttachment(ws, attachment);
    this.census.record(ws, attachment);
    this.audience.record(ws, attachment);
  }

  /** Closes a socket for a reason the client can act on, and logs why (never the token). */
  private reject(ws: WebSocket, code: number, reason: string): void {
    log("info", "GuildHub closed socket", { guildId: this.guildId, conn: attachmentOf(ws)?.conn, code, reason });
    this.audience.forget(ws);
    closeSocket(ws, code, reason);
  }

  /** Gives each event the next seq, records it in the replay buffer and fans it out. */
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
    const shed = broadcast(this.audience, outgoing, now);
    // One line per publish: what an operator charts and pages on (Workers Logs can query these fields; the
    // runtime's own metrics give its duration, as clocks do not advance during a synchronous loop in workerd).
    log("info", "GuildHub published", { guildId: this.guildId, events: outgoing.length, seq: this.store.seq, sockets: this.audience.size, shed });
  }

  // --- deadlines: one alarm multiplexes auth timeouts, token expiries and idle rooms

  /**
   * Makes the alarm fire by `at`; never moves an earlier alarm later. Inside the alarm handler, the alarm being
   * handled (due at or before `handledBefore`) does not count as earlier.
   */
  private async scheduleAlarm(at: number, handledBefore = -Infinity): Promise<void> {
    if (!Number.isFinite(at)) return;
    // Read once, then tracked: every connect and auth asks, and a storage read per socket adds up in a storm.
    if (this.alarmAt === undefined) {
      const stored = await this.ctx.storage.getAlarm();
      this.alarmAt ??= stored; // unless a concurrent caller set one meanwhile
    }
    const current = this.alarmAt;
    if (current === null || current <= handledBefore || at < current) {
      this.alarmAt = at; // before the await, so a concurrent caller compares against it
      await this.ctx.storage.setAlarm(at);
    }
  }

  private async onDeadlines(firedAt: number): Promise<void> {
    closeOverdueSockets(this.ctx.getWebSockets(), Date.now());
    await this.endIdleRooms();
    this.store.prune(Date.now(), true);
    // Recomputed after every await: sockets accepted and rooms emptied meanwhile have deadlines too.
    const next = Math.min(nextSocketDeadline(this.ctx.getWebSockets()), nextIdleDeadline(this.store, this.idleTtlMs));
    await this.scheduleAlarm(next, firedAt);
  }

  private async endIdleRooms(): Promise<void> {
    const ttlMs = this.idleTtlMs;
    for (const channelId of dueIdleRooms(this.store, ttlMs, Date.now())) {
      // A join may have landed while an earlier delete was awaited.
      if (!isDue(this.store, channelId, ttlMs, Date.now())) continue;
      try {
        await this.discord().deleteChannel(channelId, "Spell Coven room idle");
      } catch (error) {
        log("warn", "GuildHub could not end idle room", { guildId: this.guildId, channelId, ...errorFields(error) });
        this.store.setRoomEmptySince(channelId, Date.now()); // try again after another TTL
        continue;
      }
      const now = Date.now();
      this.publish(roomDeleted(this.store, { guildId: this.guildId, channelId }, now), now);
    }
  }

  private get idleTtlMs(): number {
    return this.config.ROOM_IDLE_TTL_SECONDS * 1000;
  }

  // --- rooms

  /** Why this user may not create a room now, if they may not: the rate limit, then the live-room cap. */
  private admitCreate(userId: string, now: number): ApiError | undefined {
    if (this.store.roomsCreatedBy(userId) >= CreateRoomPolicy.liveRoomsPerUser) {
      return new ApiError(429, "too_many_rooms", `at most ${CreateRoomPolicy.liveRoomsPerUser} live rooms per user; end one first`);
    }
    const { bucket, retryAfterSeconds } = takeToken(this.store.createBucket(userId), CreateRoomPolicy, now);
    this.store.putCreateBucket(userId, bucket);
    if (retryAfterSeconds > 0) {
      return new ApiError(429, "rate_limited", "too many rooms created; slow down", { retryAfterSeconds });
    }
    return undefined;
  }

  private async createInDiscord(request: CreateRoomRequest): Promise<HubResult<CreateRoomResponse>> {
    const name = request.body.name ?? DEFAULT_ROOM_NAME;
    let channel;
    try {
      channel = await this.discord().createVoiceChannel(
        request.guildId,
        { name, parentId: request.body.parentId, userLimit: request.body.userLimit },
        `Spell Coven room created by user ${request.userId}`,
      );
    } catch (error) {
      return failureOf(error);
    }
    const now = Date.now();
    const created = {
      guildId: request.guildId,
      channelId: channel.id,
      name: channel.name ?? name,
      parentId: channel.parent_id ?? request.body.parentId ?? null,
      userLimit: channel.user_limit ?? request.body.userLimit,
    };
    // The gateway's CHANNEL_CREATE may already have announced it: then this only records the creator.
    this.publish(roomCreated(this.store, created, request.userId, now), now);
    await this.scheduleAlarm(nextIdleDeadline(this.store, this.idleTtlMs));
    return { ok: true, value: { channelId: channel.id, name: created.name, guildId: request.guildId } };
  }

  private discord(): DiscordRest {
    return new DiscordRest({ apiBase: this.config.DISCORD_API_BASE, botToken: this.config.DISCORD_BOT_TOKEN });
  }

  private bindGuild(guildId: string): void {
    if (this.store.guildId === undefined) this.store.guildId = guildId;
    else if (this.store.guildId !== guildId) throw new Error(`GuildHub for ${this.store.guildId} asked to serve ${guildId}`);
  }
}

function failure(error: ApiError): { ok: false; error: ReturnType<ApiError["toWire"]> } {
  return { ok: false, error: error.toWire() };
}

function failureOf(error: unknown): { ok: false; error: ReturnType<ApiError["toWire"]> } {
  if (error instanceof ApiError) return failure(error);
  throw error;
}
