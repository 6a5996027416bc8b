import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { GatewayCloseCodes, GatewayIntentBits, GatewayOpcodes } from "discord-api-types/v10";
import { WebSocketServer, type WebSocket } from "ws";
import type { BotToken } from "./bot-token.js";
import type { SessionStartBudget } from "./session-start.js";
import { shardOfGuild } from "./snowflake.js";
import type { SimWorld } from "./world.js";

const MAX_PAYLOAD_BYTES = 4096;
/** Discord allows 120 gateway commands per 60 s per connection; more closes 4008. Heartbeats are not counted here. */
const COMMANDS_PER_WINDOW = 120;
const COMMAND_WINDOW_MS = 60_000;
const SUPPORTED_VERSIONS = new Set(["9", "10"]);
const PRIVILEGED_INTENTS = GatewayIntentBits.GuildMembers | GatewayIntentBits.GuildPresences | GatewayIntentBits.MessageContent;
const ALL_INTENTS = (1 << 26) - 1;

/** Which intent a dispatch needs; a session without it never sees the event. */
const INTENT_FOR: Record<string, number> = {
  GUILD_CREATE: GatewayIntentBits.Guilds,
  GUILD_DELETE: GatewayIntentBits.Guilds,
  CHANNEL_CREATE: GatewayIntentBits.Guilds,
  CHANNEL_UPDATE: GatewayIntentBits.Guilds,
  CHANNEL_DELETE: GatewayIntentBits.Guilds,
  VOICE_STATE_UPDATE: GatewayIntentBits.GuildVoiceStates,
};

export interface SimSession {
  id: string;
  /** IDENTIFY's `[shard_id, num_shards]` ([0, 1] without one): which guilds' events the session receives. */
  shard: [number, number];
  seq: number;
  intents: number;
  log: Array<{ s: number; t: string; d: unknown }>;
  socket: WebSocket | undefined;
  identifiedAt: number;
  /** Until when a disconnected session may still be resumed; Infinity while connected. */
  resumableUntil: number;
  alive: boolean;
}

export interface GatewayOptions {
  token: BotToken;
  budget: SessionStartBudget;
  heartbeatIntervalMs: number;
  resumeWindowMs: number;
  resumeUrl: () => string;
  /** More guilds than this on one session closes it 4011 (sharding required), as Discord does past 2,500. */
  maxGuildsPerShard: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A connection that ended: the close code the simulator received (1006 when the client dropped TCP). */
export interface SimClose {
  sessionId: string | null;
  code: number;
  reason: string;
  /** "client" when the client closed or dropped first, "server" when it answered the simulator's close. */
  by: "client" | "server";
  at: number;
}

/** Every IDENTIFY and what came of it, so tests can check the pacing a client kept. */
export interface SimIdentify {
  shard: [number, number];
  /** The rate-limit bucket Discord files it under: shard_id % max_concurrency. */
  bucket: number;
  at: number;
  outcome: "ready" | "too soon" | "invalid shard" | "sharding required" | "over the session start limit" | "rejected";
}

interface Connection {
  socket: WebSocket;
  session: SimSession | undefined;
  closedByServer: boolean;
  heartbeatDeadline: NodeJS.Timeout | undefined;
  commandTimes: number[];
}

/**
 * The simulated Discord Gateway: HELLO, heartbeats and ACKs, IDENTIFY → READY + GUILD_CREATE, dispatches with
 * per-session sequence numbers, RESUME replaying what a client missed, and the faults the control API scripts.
 */
export class SimGateway {
  readonly sessions = new Map<string, SimSession>();
  readonly received: Array<{ sessionId: string | null; op: number; d: unknown; at: number }> = [];
  readonly closes: SimClose[] = [];
  readonly identifies: SimIdentify[] = [];
  /** Every WebSocket handshake accepted, by path: /gateway (the base URL) or /gateway-resume (resume_gateway_url). */
  readonly handshakes: Array<{ path: string; at: number }> = [];
  identifyCount = 0;
  resumeCount = 0;
  acksWithheld = false;
  handshakesStalled = false;
  resumeUrlBroken = false;
  private readonly connections = new Set<Connection>();
  private readonly stalled = new Set<Duplex>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });

  constructor(
    private readonly worlds: ReadonlyMap<string, SimWorld>,
    private readonly options: GatewayOptions,
  ) {
    // A guild's events go only to the sessions of its shard.
    for (const world of worlds.values()) {
      world.onDispatch((event, data) => {
        for (const session of this.sessions.values()) if (session.alive && this.carries(session, world)) this.dispatch(session, event, data);
      });
    }
  }

  private carries(session: SimSession, world: SimWorld): boolean {
    return shardOfGuild(world.guildId, session.shard[1]) === session.shard[0];
  }

  private worldsOf(shard: [number, number]): SimWorld[] {
    return [...this.worlds.values()].filter((world) => shardOfGuild(world.guildId, shard[1]) === shard[0]);
  }

  /** Takes an HTTP upgrade for /gateway (identify) or /gateway-resume (the session's resume URL). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(request.url ?? "/", "http://sim").pathname;
    if (this.handshakesStalled) {
      this.stalled.add(socket); // accepted TCP, never answered
      socket.on("close", () => this.stalled.delete(socket));
      return;
    }
    if (path === "/gateway-resume" && this.resumeUrlBroken) {
      socket.end("HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n");
      return;
    }
    if (path !== "/gateway" && path !== "/gateway-resume") {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
      return;
    }
    // `compress=zlib-stream` and identify's `compress` are accepted and ignored: text frames are never compressed.
    const query = new URL(request.url ?? "/", "http://sim").searchParams;
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      this.handshakes.push({ path, at: Date.now() });
      this.accept(ws, query);
    });
  }

  private accept(socket: WebSocket, query: URLSearchParams): void {
    const connection: Connection = { socket, session: undefined, closedByServer: false, heartbeatDeadline: undefined, commandTimes: [] };
    this.connections.add(connection);
    socket.on("close", (code, reason) => this.onClose(connection, code, reason.toString()));
    socket.on("error", () => undefined);
    const version = query.get("v");
    if (version !== null && !SUPPORTED_VERSIONS.has(version)) {
      return this.closeConnection(connection, GatewayCloseCodes.InvalidAPIVersion, "Invalid API version.");
    }
    const encoding = query.get("encoding");
    if (encoding !== null && encoding !== "json") {
      return this.closeConnection(connection, GatewayCloseCodes.DecodeError, "Only JSON encoding is simulated.");
    }
    this.expectHeartbeat(connection);
    socket.on("message", (data, isBinary) => this.onMessage(connection, data as Buffer, isBinary));
    this.send(socket, { op: GatewayOpcodes.Hello, d: { heartbeat_interval: this.options.heartbeatIntervalMs }, s: null, t: null });
  }

  private onMessage(connection: Connection, data: Buffer, isBinary: boolean): void {
    if (data.byteLength > MAX_PAYLOAD_BYTES) return this.closeConnection(connection, GatewayCloseCodes.DecodeError, "Payload too large");
    let payload: { op?: unknown; d?: unknown };
    try {
      payload = JSON.parse(isBinary ? data.toString("utf8") : String(data)) as { op?: unknown; d?: unknown };
    } catch {
      return this.closeConnection(connection, GatewayCloseCodes.DecodeError, "Error while decoding payload.");
    }
    const op = payload.op;
    this.received.push({ sessionId: connection.session?.id ?? null, op: Number(op), d: payload.d, at: Date.now() });
    if (op !== GatewayOpcodes.Heartbeat && this.overCommandLimit(connection)) {
      return this.closeConnection(connection, GatewayCloseCodes.RateLimited, "You are being rate limited.");
    }
    switch (op) {
      case GatewayOpcodes.Heartbeat:
        this.expectHeartbeat(connection);
        if (!this.acksWithheld) this.send(connection.socket, { op: GatewayOpcodes.HeartbeatAck, d: null, s: null, t: null });
        return;
      case GatewayOpcodes.Identify:
        return this.identify(connection, payload.d);
      case GatewayOpcodes.Resume:
        return this.resume(connection, payload.d);
      case GatewayOpcodes.PresenceUpdate:
      case GatewayOpcodes.VoiceStateUpdate:
      case GatewayOpcodes.RequestGuildMembers:
        if (!connection.session) return this.closeConnection(connection, GatewayCloseCodes.NotAuthenticated, "Not authenticated.");
        return;
      default:
        return this.closeConnection(connection, GatewayCloseCodes.UnknownOpcode, "Unknown opcode.");
    }
  }

  private identify(connection: Connection, d: unknown): void {
    if (connection.session) return this.closeConnection(connection, GatewayCloseCodes.AlreadyAuthenticated, "Already authenticated.");
    const identify = (d ?? {}) as { token?: unknown; intents?: unknown; shard?: unknown };
    if (!this.options.token.acceptsGatewayToken(identify.token)) {
      return this.closeConnection(connection, GatewayCloseCodes.AuthenticationFailed, "Authentication failed.");
    }
    const intents = identify.intents;
    if (typeof intents !== "number" || !Number.isInteger(intents) || intents < 0 || intents > ALL_INTENTS) {
      return this.closeConnection(connection, GatewayCloseCodes.InvalidIntents, "Invalid intent(s).");
    }
    if (intents & PRIVILEGED_INTENTS) return this.closeConnection(connection, GatewayCloseCodes.DisallowedIntents, "Disallowed intent(s).");
    const shard = parseShard(identify.shard);
    const budget = this.options.budget;
    const record = (outcome: SimIdentify["outcome"]) =>
      this.identifies.push({ shard: shard ?? [-1, -1], bucket: shard ? budget.bucketOf(shard[0]) : -1, at: Date.now(), outcome });
    if (!shard) {
      record("invalid shard");
      return this.closeConnection(connection, GatewayCloseCodes.InvalidShard, "Invalid shard.");
    }
    const guilds = this.worldsOf(shard);
    if (guilds.length > this.options.maxGuildsPerShard) {
      record("sharding required");
      return this.closeConnection(connection, GatewayCloseCodes.ShardingRequired, "Sharding required.");
    }
    if (budget.exhausted()) {
      // Discord's documented penalty: every session of the app is terminated and the bot token is reset.
      record("over the session start limit");
      this.options.log("identify over the session start limit: token reset, all sessions terminated");
      this.options.token.revoke();
      for (const session of this.sessions.values()) session.alive = false;
      return this.closeConnections(GatewayCloseCodes.AuthenticationFailed, "Authentication failed.");
    }
    if (budget.tooSoon(shard[0])) {
      // Over max_concurrency within the window: Discord answers with a non-resumable invalid session.
      record("too soon");
      this.options.log("identify too soon", { shard: shard[0], bucket: budget.bucketOf(shard[0]) });
      this.send(connection.socket, { op: GatewayOpcodes.InvalidSession, d: false, s: null, t: null });
      return;
    }
    budget.spend(shard[0]);
    record("ready");
    this.identifyCount++;
    this.forgetExpiredSessions();
    const session: SimSession = {
      id: randomBytes(16).toString("hex"),
      shard,
      seq: 0,
      intents,
      log: [],
      socket: connection.socket,
      identifiedAt: Date.now(),
      resumableUntil: Infinity,
      alive: true,
    };
    this.sessions.set(session.id, session);
    connection.session = session;
    this.options.log("identified", { sessionId: session.id, intents, shard });
    const owner = [...this.worlds.values()][0]!.ownerId;
    this.dispatch(session, "READY", {
      v: 10,
      user: { id: owner, username: "spell-coven-sim", global_name: null, discriminator: "0", avatar: null, bot: true },
      // A guild the bot was removed from is not the bot's: READY does not list it.
      guilds: guilds.filter((world) => world.botMember).map((world) => ({ id: world.guildId, unavailable: true })),
      session_id: session.id,
      session_type: "normal",
      resume_gateway_url: this.options.resumeUrl(),
      application: { id: owner, flags: 0 },
      ...(Array.isArray(identify.shard) ? { shard } : {}),
    });
    // An unavailable guild stays in READY as unavailable; its GUILD_CREATE comes when it is restored.
    for (const world of guilds) if (world.available) this.dispatch(session, "GUILD_CREATE", world.guildCreatePayload());
  }

  private resume(connection: Connection, d: unknown): void {
    if (connection.session) return this.closeConnection(connection, GatewayCloseCodes.AlreadyAuthenticated, "Already authenticated.");
    const resume = (d ?? {}) as { token?: unknown; session_id?: unknown; seq?: unknown };
    if (!this.options.token.acceptsGatewayToken(resume.token)) {
      return this.closeConnection(connection, GatewayCloseCodes.AuthenticationFailed, "Authentication failed.");
    }
    const session = typeof resume.session_id === "string" ? this.sessions.get(resume.session_id) : undefined;
    if (!session || !session.alive || session.resumableUntil < Date.now()) {
      this.options.log("resume refused", { sessionId: resume.session_id });
      this.send(connection.socket, { op: GatewayOpcodes.InvalidSession, d: false, s: null, t: null });
      return;
    }
    const seq = typeof resume.seq === "number" ? resume.seq : -1;
    if (seq < 0 || seq > session.seq) return this.closeConnection(connection, GatewayCloseCodes.InvalidSeq, "Invalid seq.");
    if (session.socket && session.socket !== connection.socket) {
      for (const other of this.connections) if (other.socket === session.socket) other.closedByServer = true;
      session.socket.terminate();
    }
    session.socket = connection.socket;
    session.resumableUntil = Infinity;
    connection.session = session;
    this.resumeCount++;
    this.options.log("resumed", { sessionId: session.id, from: seq, to: session.seq });
    for (const entry of session.log) {
      if (entry.s > seq) this.send(connection.socket, { op: GatewayOpcodes.Dispatch, ...entry });
    }
    this.dispatch(session, "RESUMED", null);
  }

  private dispatch(session: SimSession, event: string, data: unknown): void {
    const intent = INTENT_FOR[event];
    if (intent !== undefined && (session.intents & intent) === 0) return;
    const entry = { s: ++session.seq, t: event, d: data };
    session.log.push(entry);
    if (session.socket) this.send(session.socket, { op: GatewayOpcodes.Dispatch, ...entry });
  }

  private onClose(connection: Connection, code: number, reason: string): void {
    clearTimeout(connection.heartbeatDeadline);
    this.connections.delete(connection);
    const session = connection.session;
    this.closes.push({ sessionId: session?.id ?? null, code, reason, by: connection.closedByServer ? "server" : "client", at: Date.now() });
    if (!session || session.socket !== connection.socket) return;
    session.socket = undefined;
    // A client closing with 1000/1001 ends its session for good; anything else stays resumable for a while.
    if (code === 1000 || code === 1001) session.alive = false;
    else session.resumableUntil = Date.now() + this.options.resumeWindowMs;
  }

  /** Sliding window of non-heartbeat commands on one connection. */
  private overCommandLimit(connection: Connection): boolean {
    const now = Date.now();
    connection.commandTimes = connection.commandTimes.filter((at) => now - at < COMMAND_WINDOW_MS);
    connection.commandTimes.push(now);
    return connection.commandTimes.length > COMMANDS_PER_WINDOW;
  }

  /** Sessions past their resume window can never be resumed: drop their dispatch logs. */
  private forgetExpiredSessions(): void {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      if (!session.socket && session.resumableUntil < now) session.alive = false;
      if (!session.alive) session.log = [];
    }
  }

  /** A client that stops heartbeating is disconnected, as Discord does, with a session timeout. */
  private expectHeartbeat(connection: Connection): void {
    clearTimeout(connection.heartbeatDeadline);
    connection.heartbeatDeadline = setTimeout(
      () => this.closeConnection(connection, GatewayCloseCodes.SessionTimedOut, "Session timed out."),
      this.options.heartbeatIntervalMs * 2 + 1_000,
    );
  }

  private closeConnection(connection: Connection, code: number, reason: string): void {
    if (code === GatewayCloseCodes.InvalidSeq || code === GatewayCloseCodes.SessionTimedOut || code === GatewayCloseCodes.AuthenticationFailed) {
      if (connection.session) connection.session.alive = false;
    }
    if (connection.socket.readyState === connection.socket.OPEN) {
      connection.closedByServer = true;
      connection.socket.close(code, reason);
    }
  }

  private send(socket: WebSocket, payload: unknown): void {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(payload));
  }

  // --- faults, applied to every open connection

  /** Drops every connection's TCP, or only those of sessions on shard `shardId`. */
  dropConnections(shardId?: number): void {
    for (const connection of this.connections) {
      if (shardId !== undefined && connection.session?.shard[0] !== shardId) continue;
      connection.closedByServer = true;
      connection.socket.terminate();
    }
  }

  requestReconnect(): void {
    for (const connection of this.connections) this.send(connection.socket, { op: GatewayOpcodes.Reconnect, d: null, s: null, t: null });
  }

  /**
   * Op 9 leaves the socket unauthenticated: the client may RESUME (d:true) or IDENTIFY (d:false) on the same
   * connection, as mature clients do, or reconnect.
   */
  invalidateSession(resumable: boolean): void {
    for (const connection of this.connections) {
      const session = connection.session;
      if (session) {
        connection.session = undefined;
        session.socket = undefined;
        if (resumable) session.resumableUntil = Date.now() + this.options.resumeWindowMs;
        else session.alive = false;
      }
      this.send(connection.socket, { op: GatewayOpcodes.InvalidSession, d: resumable, s: null, t: null });
    }
  }

  closeConnections(code: number, reason = ""): void {
    for (const connection of [...this.connections]) this.closeConnection(connection, code, reason);
  }

  requestHeartbeat(): void {
    for (const connection of this.connections) this.send(connection.socket, { op: GatewayOpcodes.Heartbeat, d: connection.session?.seq ?? null, s: null, t: null });
  }

  releaseStalled(): void {
    for (const socket of this.stalled) socket.destroy();
    this.stalled.clear();
  }

  close(): void {
    for (const connection of this.connections) {
      clearTimeout(connection.heartbeatDeadline);
      connection.socket.terminate();
    }
    this.releaseStalled();
    this.wss.close();
  }
}

/** IDENTIFY's optional `[shard_id, num_shards]`; absent means shard 0 of 1. */
function parseShard(shard: unknown): [number, number] | undefined {
  if (shard === undefined || shard === null) return [0, 1];
  if (!Array.isArray(shard) || shard.length !== 2) return undefined;
  const [id, count] = shard as unknown[];
  if (!Number.isInteger(id) || !Number.isInteger(count)) return undefined;
  if ((count as number) < 1 || (id as number) < 0 || (id as number) >= (count as number)) return undefined;
  return [id as number, count as number];
}
