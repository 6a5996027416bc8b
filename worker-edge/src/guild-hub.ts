import { DurableObject } from "cloudflare:workers";
import {
  AUTH_TIMEOUT_MS,
  ClientMessage,
  CloseCode,
  MAX_CLIENT_MESSAGE_BYTES,
  parseJson,
  type AppEvent,
  type AuthOkMessage,
  type ClientAuth,
  type CreateRoomResponse,
  type EventEnvelope,
  type IdentifiedInternalEvent,
  type RoomsResponse,
  type SnapshotMessage,
} from "../../protocol/index.js";
import { AuthError, verifyAppToken } from "./auth.js";
import { edgeConfig, isMultiGuild, type EdgeConfig } from "./config.js";
import { DiscordRest } from "./discord-rest.js";
import { ApiError } from "./errors.js";
import { socketGuild } from "./guilds.js";
import { errorFields, log } from "./log.js";
import { reconcile, roomCreated, roomDeleted } from "./hub/presence.js";
import { UserRateLimiter } from "./hub/rate-limit.js";
import type { CreateRoomRequest, EndRoomRequest, HubResult } from "./hub/rpc.js";
import { attachmentOf, closeSocket, deadlineOf, setAttachment, wantsEvent, type SocketAttachment } from "./hub/sockets.js";
import { HubStore } from "./hub/store.js";

const DEFAULT_ROOM_NAME = "Spell Coven room";

/**
 * One per guild: the single source of truth for its rooms and voice presence, the event sequence and replay
 * buffer, and the fan-out to hibernatable sockets. Runtime hooks stay thin and never let an error escape.
 */
export class GuildHub extends DurableObject<Env> {
  private readonly store: HubStore;
  private readonly rateLimiter = new UserRateLimiter();
  /** Creates in flight per user+idempotency key, so racing duplicates share one Discord call. */
  private readonly creating = new Map<string, Promise<HubResult<CreateRoomResponse>>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new HubStore(ctx.storage.sql);
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
    closeSocket(ws, code, reason); // completes the closing handshake
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("warn", "GuildHub webSocketError", { guildId: this.guildId, ...errorFields(error) });
    closeSocket(ws, 1011);
  }

  override async alarm(): Promise<void> {
    try {
      await this.onDeadlines(Date.now());
    } catch (error) {
      log("error", "GuildHub alarm failed", { guildId: this.guildId, ...errorFields(error) });
      await this.ctx.storage.setAlarm(Date.now() + 5_000); // try again rather than leave deadlines unenforced
    }
  }

  // --- RPC from the Worker

  async ingest(guildId: string, events: IdentifiedInternalEvent[]): Promise<{ accepted: number; duplicates: number }> {
    this.bindGuild(guildId);
    const now = Date.now();
    let accepted = 0;
    let duplicates = 0;
    const produced: AppEvent[] = [];
    for (const event of events) {
      if (event.id !== undefined && this.store.hasSeen(event.id)) {
        duplicates++;
        continue;
      }
      produced.push(...reconcile(this.store, event, now));
      if (event.id !== undefined) this.store.markSeen(event.id, now);
      accepted++;
    }
    this.publish(produced, now);
    await this.scheduleRoomIdleDeadline();
    return { accepted, duplicates };
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
    const retryAfterSeconds = this.rateLimiter.take(request.userId, Date.now());
    if (retryAfterSeconds > 0) {
      return failure(new ApiError(429, "rate_limited", "too many rooms created; slow down", { retryAfterSeconds }));
    }
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
    this.ctx.acceptWebSocket(server);
    const authDeadline = Date.now() + AUTH_TIMEOUT_MS;
    setAttachment(server, { phase: "pending", authDeadline });
    await this.scheduleAlarm(authDeadline);
    return new Response(null, { status: 101, webSocket: client });
  }

  private async onClientMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const size = typeof raw === "string" ? new TextEncoder().encode(raw).byteLength : raw.byteLength;
    if (size > MAX_CLIENT_MESSAGE_BYTES) return closeSocket(ws, CloseCode.tooLarge, "message too large");
    if (typeof raw !== "string") return closeSocket(ws, CloseCode.badMessage, "binary messages are not supported");
    const message = ClientMessage.safeParse(parseJson(raw));
    if (!message.success) return closeSocket(ws, CloseCode.badMessage, "malformed message");
    await this.authenticate(ws, message.data);
  }

  private async authenticate(ws: WebSocket, auth: ClientAuth): Promise<void> {
    const previous = attachmentOf(ws);
    let user;
    try {
      user = await verifyAppToken(auth.token, this.config);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      return closeSocket(ws, CloseCode.unauthorized, error.message);
    }
    if (isMultiGuild(this.config) && !user.guilds.includes(this.guildId)) {
      return closeSocket(ws, CloseCode.guildNotAllowed, "guild not allowed for this token");
    }
    if (previous?.phase === "live" && previous.userId !== user.userId) {
      return closeSocket(ws, CloseCode.unauthorized, "a refreshed token must be for the same user");
    }
    const rooms = auth.rooms ?? (previous?.phase === "live" ? previous.rooms : undefined);
    const live: SocketAttachment = { phase: "live", userId: user.userId, expiresAt: user.expiresAt * 1000, rooms };
    setAttachment(ws, live);
    await this.scheduleAlarm(live.expiresAt);

    const seq = this.store.seq;
    ws.send(JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId: this.guildId, seq } satisfies AuthOkMessage));
    if (previous?.phase !== "live") this.catchUp(ws, live, auth.since);
  }

  /** Sends exactly the events a resuming client missed, or a snapshot when its gap is outside the buffer. */
  private catchUp(ws: WebSocket, attachment: SocketAttachment, since: number | undefined): void {
    const seq = this.store.seq;
    if (since !== undefined && since <= seq) {
      const oldest = this.store.oldestBufferedSeq();
      if (since === seq || (oldest !== undefined && oldest <= since + 1)) {
        for (const buffered of this.store.eventsAfter(since)) {
          if (wantsEvent(attachment, buffered.event, buffered.channelId)) ws.send(buffered.message);
        }
        return;
      }
    }
    const subscribed = attachment.phase === "live" ? attachment.rooms : undefined;
    const rooms = this.store
      .snapshotRooms()
      .map((room) => (!subscribed || subscribed.includes(room.channelId) ? room : { ...room, members: [] }));
    ws.send(JSON.stringify({ v: 1, type: "snapshot", payload: { rooms }, seq } satisfies SnapshotMessage));
  }

  /** Gives each event the next seq, records it in the replay buffer and fans it out; one bad socket never stalls the rest. */
  private publish(events: AppEvent[], now: number): void {
    if (events.length === 0) return;
    const messages = events.map((event) => {
      const seq = this.store.seq + 1;
      this.store.seq = seq;
      const message = JSON.stringify({ v: 1, type: "event", ...event, ts: now, seq } as EventEnvelope);
      this.store.appendEvent(seq, now, event, message);
      return { event, message };
    });
    this.store.prune(now);
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = attachmentOf(ws);
      if (!attachment || attachment.phase !== "live" || attachment.expiresAt <= now) continue;
      for (const { event, message } of messages) {
        if (!wantsEvent(attachment, event.event, event.payload.channelId)) continue;
        try {
          ws.send(message);
        } catch (error) {
          // workerd exposes no per-socket buffer size; a send it refuses marks a consumer we must shed.
          log("warn", "GuildHub shedding socket", { guildId: this.guildId, ...errorFields(error) });
          closeSocket(ws, CloseCode.overloaded, "overloaded");
          break;
        }
      }
    }
  }

  // --- deadlines: one alarm multiplexes auth timeouts, token expiries and idle rooms

  private async scheduleAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || at < current) await this.ctx.storage.setAlarm(at);
  }

  private async scheduleRoomIdleDeadline(): Promise<void> {
    const next = this.nextRoomIdleDeadline();
    if (next !== undefined) await this.scheduleAlarm(next);
  }

  private nextRoomIdleDeadline(): number | undefined {
    const ttlMs = this.config.ROOM_IDLE_TTL_SECONDS * 1000;
    if (ttlMs === 0) return undefined;
    const deadlines = this.store
      .rooms()
      .filter((room) => room.creatorId !== null && room.emptySince !== null)
      .map((room) => (room.emptySince as number) + ttlMs);
    return deadlines.length > 0 ? Math.min(...deadlines) : undefined;
  }

  private async onDeadlines(now: number): Promise<void> {
    let next = Infinity;
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = attachmentOf(ws);
      if (!attachment) continue;
      const deadline = deadlineOf(attachment);
      if (deadline > now) {
        next = Math.min(next, deadline);
      } else if (attachment.phase === "pending") {
        closeSocket(ws, CloseCode.authTimeout, "auth timeout");
      } else {
        closeSocket(ws, CloseCode.unauthorized, "token expired");
      }
    }
    await this.endIdleRooms(now);
    this.store.prune(now);
    next = Math.min(next, this.nextRoomIdleDeadline() ?? Infinity);
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(next);
  }

  private async endIdleRooms(now: number): Promise<void> {
    const ttlMs = this.config.ROOM_IDLE_TTL_SECONDS * 1000;
    if (ttlMs === 0) return;
    for (const room of this.store.rooms()) {
      if (room.creatorId === null || room.emptySince === null || room.emptySince + ttlMs > now) continue;
      try {
        await this.discord().deleteChannel(room.channelId, "Spell Coven room idle");
      } catch (error) {
        log("warn", "GuildHub could not end idle room", { guildId: this.guildId, channelId: room.channelId, ...errorFields(error) });
        this.store.setRoomEmptySince(room.channelId, now); // try again after another TTL
        continue;
      }
      this.publish(roomDeleted(this.store, { guildId: this.guildId, channelId: room.channelId }, now), now);
    }
  }

  // --- helpers

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
    await this.scheduleRoomIdleDeadline();
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

