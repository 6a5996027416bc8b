import { GatewayOpcodes, type GatewayDispatchPayload, type GatewayReceivePayload } from "discord-api-types/v10";
import WebSocket from "ws";
import type { Logger } from "../log.js";
import { backoffDelay, type BackoffPolicy } from "../../../protocol/backoff.js";
import { closeAction } from "./close-codes.js";
import type { IdentifyQueue } from "./identify-queue.js";

export enum ShardState {
  Idle = "idle",
  Connecting = "connecting",
  Identifying = "identifying",
  Resuming = "resuming",
  Ready = "ready",
  WaitingToReconnect = "waiting",
  Fatal = "fatal",
  Destroyed = "destroyed",
}

export interface GatewaySession {
  sessionId: string;
  seq: number;
  resumeGatewayUrl: string;
}

export interface GatewayBotInfo {
  url: string;
  /** The shard count Discord recommends. */
  shards: number;
  sessionStartLimit: { remaining: number; resetAfterMs: number; maxConcurrency: number };
}

export interface ShardTimings {
  /** Discord's IDENTIFY window per rate-limit bucket (5 s). */
  identifySpacingMs: number;
  connectTimeoutMs: number;
  helloTimeoutMs: number;
  readyTimeoutMs: number;
  /** How long shutdown waits for the 4000 close handshake before dropping the socket. */
  closeTimeoutMs: number;
  invalidSessionWaitMs: { min: number; max: number };
  backoff: BackoffPolicy;
}

/** Timings, in one place, so tests can shrink them. */
export const SHARD_DEFAULTS = {
  identifySpacingMs: 5_000,
  connectTimeoutMs: 10_000,
  helloTimeoutMs: 10_000,
  readyTimeoutMs: 15_000,
  closeTimeoutMs: 1_000,
  invalidSessionWaitMs: { min: 1_000, max: 5_000 },
  backoff: { minMs: 1_000, maxMs: 60_000, factor: 2 },
} as const satisfies ShardTimings;

export interface ShardDeps {
  createSocket: (url: string) => WebSocket;
  fetchGatewayBot: () => Promise<GatewayBotInfo>;
  /** Shared by every shard of the process: IDENTIFYs paced per max_concurrency bucket. */
  identifyQueue: IdentifyQueue;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

export interface ShardHandlers {
  dispatch(payload: GatewayDispatchPayload, session: GatewaySession): void;
  state?(state: ShardState): void;
  fatal(code: number, why: string): void;
  ackLatency?(ms: number): void;
}

const GATEWAY_QUERY = "?v=10&encoding=json";

/** Discord REST answered 401: no reconnecting will fix the token. */
export class InvalidTokenError extends Error {}

/**
 * One Discord Gateway connection: HELLO, jittered heartbeats with zombie detection, IDENTIFY or RESUME, and
 * one close-code table deciding between resume, a new session and giving up. `destroy()` clears every timer
 * and detaches the old socket before anything reconnects.
 */
export class GatewayShard {
  state = ShardState.Idle;
  session: GatewaySession | undefined;
  reconnects = 0;
  resumes = 0;
  identifies = 0;
  private socket: WebSocket | undefined;
  /**
   * Which connection is current: bumped when a socket is created and when one is torn down. An async step (the
   * IDENTIFY spacing wait, a timeout, a wait before reconnecting) remembers the value it began with and does
   * nothing once it has changed, so it can never act on, or tear down, a newer connection.
   */
  private connection = 0;
  private timers = new Set<NodeJS.Timeout>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private ackReceived = true;
  private lastHeartbeatAt = 0;
  private attempt = 0;
  private resumeFailures = 0;

  constructor(
    private readonly options: { token: string; intents: number; shard: [id: number, count: number]; gatewayUrlOverride?: string; session?: GatewaySession },
    private readonly handlers: ShardHandlers,
    private readonly deps: ShardDeps,
    private readonly timings: ShardTimings,
    private readonly log: Logger,
  ) {
    this.session = options.session && { ...options.session }; // its own copy: the seq advances with every dispatch
  }

  get id(): number {
    return this.options.shard[0];
  }

  start(): void {
    void this.connect();
  }

  /**
   * Closes with 4000 so Discord keeps the session resumable (1000/1001 would end it): the close frame goes out
   * and the close handshake gets closeTimeoutMs to finish before the socket is dropped.
   */
  async shutdown(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined; // destroy() must not terminate it before the close frame is out
    this.destroy(ShardState.Destroyed);
    if (!socket) return;
    detach(socket);
    if (socket.readyState === WebSocket.OPEN) {
      await new Promise<void>((resolve) => {
        const timeout = setTimeout(resolve, this.timings.closeTimeoutMs);
        socket.once("close", () => {
          clearTimeout(timeout);
          resolve();
        });
        socket.close(4000, "shutting down; will resume");
      });
    }
    socket.terminate();
  }

  /**
   * Ends this session and IDENTIFYs anew: its READY and GUILD_CREATEs give every guild of the shard a whole picture.
   * Costs a session start from the daily budget (the IDENTIFY queue paces and guards it). Asked again while the new
   * session is being identified, it does nothing.
   */
  freshSession(reason: string): void {
    if (this.state === ShardState.Destroyed || this.state === ShardState.Fatal || !this.session) return;
    this.log("warn", "starting a fresh Discord session", { reason });
    this.session = undefined;
    this.reconnect();
  }

  private setState(state: ShardState): void {
    if (this.state === state) return;
    this.state = state;
    this.handlers.state?.(state);
  }

  private async connect(): Promise<void> {
    if (this.state === ShardState.Destroyed || this.state === ShardState.Fatal) return;
    this.setState(ShardState.Connecting);
    const began = this.connection;
    const resuming = this.session !== undefined;
    let url: string;
    try {
      url = resuming && this.resumeFailures === 0 ? this.session!.resumeGatewayUrl : await this.baseUrl();
    } catch (error) {
      if (began !== this.connection) return; // shut down or superseded while fetching the URL
      if (error instanceof InvalidTokenError) return this.giveUp(4004, "the bot token is invalid (Discord REST answered 401)");
      this.log("warn", "could not fetch the gateway URL", { error: String(error) });
      return this.scheduleReconnect();
    }
    if (began !== this.connection) return;
    const socket = this.deps.createSocket(`${url.replace(/\/?$/, "")}${GATEWAY_QUERY}`);
    this.socket = socket;
    const connection = ++this.connection;
    const connectTimer = this.timer(this.timings.connectTimeoutMs, () => {
      this.log("warn", "gateway handshake timed out", { url });
      this.failConnection(resuming);
    });
    socket.on("open", () => {
      this.clearTimer(connectTimer);
      this.timer(this.timings.helloTimeoutMs, () => {
        if (this.heartbeatTimer === undefined) {
          this.log("warn", "no HELLO from the gateway");
          this.failConnection(resuming);
        }
      });
    });
    socket.on("message", (data) => {
      if (connection === this.connection) this.onMessage(data.toString(), connection);
    });
    socket.on("close", (code, reason) => this.onClose(socket, code, reason.toString()));
    socket.on("error", (error) => {
      this.log("debug", "gateway socket error", { error: error.message });
      if (socket.readyState !== WebSocket.OPEN) this.failConnection(resuming);
    });
  }

  /** A handshake that failed: a resume URL that does not answer falls back to the base URL. */
  private failConnection(resuming: boolean): void {
    if (resuming) this.resumeFailures++;
    this.reconnect();
  }

  private async baseUrl(): Promise<string> {
    return this.options.gatewayUrlOverride ?? (await this.deps.fetchGatewayBot()).url;
  }

  private giveUp(code: number, why: string): void {
    this.log("error", "Discord refused the bot", { code, why });
    this.destroy(ShardState.Fatal);
    this.handlers.fatal(code, why);
  }

  private onMessage(raw: string, connection: number): void {
    let payload: GatewayReceivePayload;
    try {
      payload = JSON.parse(raw) as GatewayReceivePayload;
    } catch {
      return this.log("warn", "undecodable gateway payload");
    }
    switch (payload.op) {
      case GatewayOpcodes.Hello:
        this.startHeartbeating(payload.d.heartbeat_interval);
        if (this.session) this.resume();
        else void this.identify(connection);
        return;
      case GatewayOpcodes.HeartbeatAck:
        this.ackReceived = true;
        this.handlers.ackLatency?.(this.deps.now() - this.lastHeartbeatAt);
        return;
      case GatewayOpcodes.Heartbeat:
        return this.sendHeartbeat();
      case GatewayOpcodes.Reconnect:
        this.log("info", "gateway asked us to reconnect");
        return this.reconnect();
      case GatewayOpcodes.InvalidSession:
        return void this.onInvalidSession(payload.d);
      case GatewayOpcodes.Dispatch:
        return this.onDispatch(payload);
    }
  }

  private onDispatch(payload: GatewayDispatchPayload): void {
    if (payload.t === "READY") {
      this.session = { sessionId: payload.d.session_id, seq: payload.s, resumeGatewayUrl: payload.d.resume_gateway_url };
      this.markReady();
    } else if (payload.t === "RESUMED") {
      this.markReady();
      this.resumes++;
    }
    if (!this.session) return;
    this.session.seq = payload.s;
    this.handlers.dispatch(payload, this.session);
  }

  private markReady(): void {
    this.attempt = 0;
    this.resumeFailures = 0;
    this.setState(ShardState.Ready);
  }

  private async onInvalidSession(resumable: boolean): Promise<void> {
    if (resumable) return this.reconnect();
    this.log("info", "session invalidated; identifying anew");
    this.session = undefined;
    const { min, max } = this.timings.invalidSessionWaitMs;
    this.teardownSocket();
    this.setState(ShardState.WaitingToReconnect);
    const waiting = this.connection;
    await this.deps.sleep(min + this.deps.random() * (max - min));
    if (waiting === this.connection) void this.connect();
  }

  /** IDENTIFY on `connection`, once its bucket allows; dropped if that connection is no longer current by then. */
  private async identify(connection: number): Promise<void> {
    this.setState(ShardState.Identifying);
    // The daily budget first: running out resets the bot token, so never identify past it.
    const info = await this.deps.fetchGatewayBot().catch(() => undefined);
    if (connection !== this.connection) return;
    if (info && info.sessionStartLimit.remaining <= 0) {
      this.log("warn", "session start limit exhausted; waiting for it to reset", { shard: this.id, resetAfterMs: info.sessionStartLimit.resetAfterMs });
      this.teardownSocket();
      this.setState(ShardState.WaitingToReconnect);
      const waiting = this.connection;
      await this.deps.sleep(info.sessionStartLimit.resetAfterMs);
      if (waiting === this.connection) void this.connect();
      return;
    }
    // Then the bucket's turn: one IDENTIFY per max_concurrency bucket per window, across every shard of the process.
    const current = () => connection === this.connection && this.socket?.readyState === WebSocket.OPEN;
    if (!(await this.deps.identifyQueue.take(this.id, current))) return; // a newer connection identifies for itself
    this.identifies++;
    this.send({
      op: GatewayOpcodes.Identify,
      d: {
        token: this.options.token,
        intents: this.options.intents,
        shard: this.options.shard,
        properties: { os: process.platform, browser: "spell-coven-realtime", device: "spell-coven-realtime" },
      },
    });
    this.expectReady();
  }

  private resume(): void {
    this.setState(ShardState.Resuming);
    const session = this.session!;
    this.send({ op: GatewayOpcodes.Resume, d: { token: this.options.token, session_id: session.sessionId, seq: session.seq } });
    this.expectReady();
  }

  private expectReady(): void {
    this.timer(this.timings.readyTimeoutMs, () => {
      if (this.state !== ShardState.Ready) {
        this.log("warn", "no READY or RESUMED in time");
        this.reconnect();
      }
    });
  }

  private startHeartbeating(intervalMs: number): void {
    this.clearHeartbeat();
    this.ackReceived = true; // a fresh connection starts with nothing owed
    const connection = this.connection;
    const beat = () => {
      if (connection !== this.connection) return;
      if (!this.ackReceived) {
        this.log("warn", "no heartbeat ACK since the last beat: zombie connection, resuming");
        return this.reconnect();
      }
      this.sendHeartbeat();
    };
    // The first beat is jittered so a fleet restarting together does not beat in lockstep.
    this.heartbeatTimer = setTimeout(() => {
      beat();
      this.heartbeatTimer = setInterval(beat, intervalMs);
    }, intervalMs * this.deps.random());
  }

  private sendHeartbeat(): void {
    this.ackReceived = false;
    this.lastHeartbeatAt = this.deps.now();
    this.send({ op: GatewayOpcodes.Heartbeat, d: this.session?.seq ?? null });
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return; // a socket we already replaced
    const { action, why } = closeAction(code);
    if (action === "fatal") return this.giveUp(code, `${why}${reason ? ` (${reason})` : ""}`);
    this.log("info", "gateway closed", { code, why, next: action });
    if (action === "new-session") this.session = undefined;
    this.teardownSocket();
    this.scheduleReconnect();
  }

  /** Drops the current connection at once (no close frame) and reconnects, resuming when it can. */
  private reconnect(): void {
    this.teardownSocket();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.state === ShardState.Destroyed || this.state === ShardState.Fatal) return;
    this.setState(ShardState.WaitingToReconnect);
    this.reconnects++;
    const delay = this.attempt === 0 ? 0 : backoffDelay(this.attempt, this.timings.backoff, this.deps.random);
    this.attempt++;
    this.timer(delay, () => void this.connect());
  }

  private teardownSocket(): void {
    this.connection++;
    this.clearHeartbeat();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      detach(socket);
      socket.terminate();
    }
  }

  destroy(state: ShardState = ShardState.Destroyed): void {
    this.teardownSocket();
    this.setState(state);
  }

  private send(payload: unknown): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(payload));
  }

  /** A timeout bound to the connection current now: it does nothing if that connection has ended. */
  private timer(ms: number, run: () => void): NodeJS.Timeout {
    const connection = this.connection;
    const handle = setTimeout(() => {
      this.timers.delete(handle);
      if (connection === this.connection) run();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  private clearTimer(handle: NodeJS.Timeout): void {
    clearTimeout(handle);
    this.timers.delete(handle);
  }

  private clearHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) {
      clearTimeout(this.heartbeatTimer);
      clearInterval(this.heartbeatTimer);
    }
    this.heartbeatTimer = undefined;
  }
}

/** Stops a socket from reaching the shard; a late error is swallowed rather than thrown. */
function detach(socket: WebSocket): void {
  socket.removeAllListeners();
  socket.on("error", () => undefined);
}
