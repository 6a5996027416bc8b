import { DurableObject } from "cloudflare:workers";
import {
  backoffDelay,
  CloseCode,
  parseJson,
  type ClientAuth,
  type ClientRooms,
  type ObjectStats,
} from "../../protocol/index.js";
import * as clock from "./clock.js";
import { edgeConfig, type EdgeConfig } from "./config.js";
import { socketGuild } from "./guilds.js";
import { FirstAuthPolicy, UserRates } from "./hub/admission.js";
import { AlarmSchedule } from "./hub/alarm.js";
import { admitSocket, readClientMessage } from "./hub/intake.js";
import { exchangeAuth } from "./hub/auth-exchange.js";
import { cadenceMs, Coalescer } from "./hub/coalescer.js";
import { closeOverdueSockets, nextSocketDeadline } from "./hub/deadlines.js";
import { authOkMessage, broadcast, canReplay, catchUp, type Outgoing } from "./hub/fanout.js";
import { withRoomFilter } from "./hub/room-filter.js";
import { SocketIndex } from "./hub/socket-index.js";
import { closeSocket, isOpen, type LiveAttachment } from "./hub/sockets.js";
import { errorFields, log } from "./log.js";
import { hubStub, RELAY_FULL_STATUS, RELAY_NAME_HEADER } from "./placement.js";
import { linkRequest } from "./relay/link.js";
import { RelayMirror } from "./relay/mirror.js";

/** How the link to the hub is retried after it drops: soon, then backing off (the relay's sockets stay meanwhile). */
const LINK_BACKOFF = { minMs: 50, maxMs: 5_000, factor: 2 } as const;
/**
 * A relay whose last socket left keeps its link this long, for the reconnect that usually follows. Its link keeps
 * it awake (an object with an outgoing socket never hibernates), so it is never evicted with sockets it could keep:
 * an eviction, a deploy or a crash closes its clients' sockets too, and they resume.
 */
const LINK_LINGER_MS = 10_000;

/** A socket whose auth was accepted (or filter changed), waiting for the relay's copy to be able to serve it. */
interface Awaiting {
  attachment: LiveAttachment;
  /** A first auth: the ack goes first, then the catch-up from `since`. A filter change: a snapshot only. */
  ack: boolean;
  since: number | undefined;
}

type Link =
  | { state: "down" }
  | { state: "connecting" }
  | { state: "open"; ws: WebSocket }
  | { state: "retrying"; timer: ReturnType<typeof setTimeout> };

/**
 * One of a guild's relays: holds client sockets (hibernatable, the same protocol as the hub's), verifies their
 * tokens itself, and gets each of the hub's flushes once over its link (relay/link.ts), which it fans out to its
 * sockets on its own cadence. It serves resumes from its own copy of the hub's recent events and snapshots from the
 * newest one the hub sent (relay/mirror.ts), so a connect storm's work lands on the relays, not the hub. Holds no
 * storage: what it knows lives as long as its sockets do.
 */
export class LobbyRelay extends DurableObject<Env> {
  private readonly sockets: SocketIndex;
  private readonly mirror = new RelayMirror();
  private readonly coalescer: Coalescer<Outgoing>;
  private readonly awaiting = new Map<WebSocket, Awaiting>();
  /**
   * First auths per user, in memory: an eviction forgives them, but a relay is evicted only after its last socket
   * left and its link lingered (LINK_LINGER_MS), by when most of each burst has refilled anyway.
   */
  private readonly firstAuths = new UserRates(FirstAuthPolicy);
  private readonly counters = { events: 0, flushes: 0, sends: 0, relaySends: 0, tokensVerified: 0 };
  private identity: { guildId: string; name: string } | undefined;
  private link: Link = { state: "down" };
  /** Bumped whenever the link changes: a callback of an older link never acts. */
  private linkGeneration = 0;
  private linkFailures = 0;
  private snapshotAsked = false;
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly deadlineAlarm = new AlarmSchedule(this.ctx.storage);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sockets = new SocketIndex(() => ctx.getWebSockets());
    this.coalescer = new Coalescer({
      flush: (outgoing) => this.flush(outgoing),
      cadenceMs: () => cadenceMs(this.config.FLUSH_CADENCE_MS, this.sockets.size),
      now: clock.now,
    });
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  private get config(): EdgeConfig {
    return edgeConfig(this.env);
  }

  private get name(): string {
    return this.identity?.name ?? this.ctx.id.toString();
  }

  // --- runtime hooks

  override async fetch(request: Request): Promise<Response> {
    try {
      return await this.acceptSocket(request);
    } catch (error) {
      log("error", "LobbyRelay fetch failed", { relay: this.name, ...errorFields(error) });
      return Response.json({ error: "internal", message: "internal error" }, { status: 500 });
    }
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    try {
      await this.onClientMessage(ws, message);
    } catch (error) {
      log("error", "LobbyRelay webSocketMessage failed", { relay: this.name, ...errorFields(error) });
      closeSocket(ws, 1011, "internal error");
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      this.forget(ws);
    } catch (error) {
      log("error", "LobbyRelay webSocketClose failed", { relay: this.name, ...errorFields(error) });
    }
    closeSocket(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("warn", "LobbyRelay webSocketError", { relay: this.name, ...errorFields(error) });
    try {
      this.forget(ws);
    } catch (failure) {
      log("error", "LobbyRelay webSocketError failed", { relay: this.name, ...errorFields(failure) });
    }
    closeSocket(ws, 1011);
  }

  override async alarm(): Promise<void> {
    this.deadlineAlarm.fired();
    const firedAt = clock.now();
    try {
      closeOverdueSockets(this.ctx.getWebSockets(), this.sockets, clock.now());
      await this.deadlineAlarm.atMost(nextSocketDeadline(this.ctx.getWebSockets(), this.sockets), firedAt);
    } catch (error) {
      log("error", "LobbyRelay alarm failed", { relay: this.name, ...errorFields(error) });
      await this.deadlineAlarm.atMost(clock.now() + 5_000, firedAt);
    }
  }

  // --- RPC from the Worker

  async stats(): Promise<ObjectStats> {
    return { name: this.name, role: "relay", sockets: this.sockets.size, relays: [], ...this.counters };
  }

  // --- client sockets

  private async acceptSocket(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "invalid_input", message: "expected a WebSocket upgrade" }, { status: 426 });
    }
    this.bindIdentity(socketGuild(new URL(request.url), this.config), request.headers.get(RELAY_NAME_HEADER));
    // Full: the Worker tries the region's next relay. Every accepted socket counts, also the closing ones.
    if (this.ctx.getWebSockets().length >= this.config.RELAY_MAX_SOCKETS) {
      return Response.json({ error: "relay_full", message: "this relay holds as many sockets as it may" }, { status: RELAY_FULL_STATUS });
    }
    const admitted = admitSocket(this.ctx, this.sockets, request.headers);
    if (admitted.refused !== undefined) {
      log("warn", "LobbyRelay refused socket", { relay: this.name, reason: admitted.refused });
      return admitted.response;
    }
    await this.deadlineAlarm.atMost(admitted.authDeadline);
    return admitted.response;
  }

  private async onClientMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    if (!isOpen(ws)) return;
    const read = readClientMessage(raw);
    if ("close" in read) return this.reject(ws, read.close.code, read.close.reason);
    if (read.message.type === "rooms") return this.changeRooms(ws, read.message);
    await this.authenticate(ws, read.message);
  }

  private async authenticate(ws: WebSocket, auth: ClientAuth): Promise<void> {
    if (!this.identity) return this.reject(ws, CloseCode.serviceRestart, "relay restarted");
    this.counters.tokensVerified++;
    const context = {
      sockets: this.sockets,
      config: this.config,
      guildId: this.identity.guildId,
      firstAuths: this.firstAuths,
      // A first auth waits for the link before it is served, and counts under the cap while it waits.
      goLive: (socket: WebSocket, attachment: LiveAttachment, refresh: boolean) =>
        refresh ? this.sockets.set(socket, attachment) : this.awaiting.set(socket, { attachment, ack: true, since: auth.since }),
      userSocketCount: (userId: string, except: WebSocket) => this.sockets.userSocketCount(userId, except) + this.awaitingOf(userId, except),
    };
    const outcome = await exchangeAuth(context, ws, auth, clock.now());
    if (outcome.kind === "gone") return;
    if (outcome.kind === "refused") return this.reject(ws, outcome.code, outcome.reason);
    if (outcome.refresh) {
      this.sendAck(ws);
    } else {
      this.ensureLink();
      this.serveAwaiting();
    }
    await this.deadlineAlarm.atMost(outcome.attachment.expiresAt);
  }

  /** A filter change is answered by a snapshot at the relay's seq; until one is here, the old filter stays. */
  private changeRooms(ws: WebSocket, message: ClientRooms): void {
    const changed = withRoomFilter(this.sockets.attachment(ws), message.rooms, clock.now());
    if ("close" in changed) return this.reject(ws, changed.close.code, changed.close.reason);
    this.awaiting.set(ws, { attachment: changed.attachment, ack: false, since: undefined });
    this.serveAwaiting();
  }

  /** Open sockets of `userId` authenticated and waiting for the link, not counting `except`. */
  private awaitingOf(userId: string, except: WebSocket): number {
    let count = 0;
    for (const [ws, waiting] of this.awaiting) if (ws !== except && isOpen(ws) && waiting.attachment.userId === userId) count++;
    return count;
  }

  /**
   * Makes every waiting socket live that the relay's copy can serve now: a replay from its own buffer, or a
   * snapshot at its seq (asked of the hub once for all who need one). Pending events go out first, so the
   * catch-up covers every seq the socket is sent and none twice.
   */
  private serveAwaiting(): void {
    if (this.awaiting.size === 0 || !this.mirror.ready) return;
    let needSnapshot = false;
    this.coalescer.flushNow();
    for (const [ws, waiting] of this.awaiting) {
      if (!isOpen(ws)) {
        this.awaiting.delete(ws);
        continue;
      }
      const replay = waiting.ack && canReplay(this.mirror, waiting.since);
      if (!replay && !this.mirror.hasCurrentSnapshot) {
        needSnapshot = true;
        continue;
      }
      this.awaiting.delete(ws);
      this.sockets.set(ws, waiting.attachment);
      if (waiting.ack) this.sendAck(ws);
      catchUp(ws, this.mirror, waiting.attachment, waiting.ack ? waiting.since : undefined);
    }
    if (needSnapshot) this.askSnapshot();
  }

  private sendAck(ws: WebSocket): void {
    ws.send(authOkMessage(this.identity!.guildId, this.mirror.seq));
  }

  private reject(ws: WebSocket, code: number, reason: string): void {
    log("info", "LobbyRelay closed socket", { relay: this.name, code, reason });
    this.forget(ws);
    closeSocket(ws, code, reason);
  }

  private forget(ws: WebSocket): void {
    this.sockets.forget(ws);
    this.awaiting.delete(ws);
    if (!this.wantsLink()) this.lingerThenUnlink();
  }

  /** Sends a flush of the hub's events to this relay's sockets. */
  private flush(outgoing: Outgoing[]): void {
    try {
      const { sends } = broadcast(this.sockets, outgoing, clock.now());
      this.counters.flushes++;
      this.counters.sends += sends;
    } catch (error) {
      log("error", "LobbyRelay flush failed", { relay: this.name, events: outgoing.length, ...errorFields(error) });
    }
  }

  // --- the link to the hub

  private wantsLink(): boolean {
    return this.sockets.size > 0 || this.awaiting.size > 0;
  }

  private ensureLink(): void {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.link.state === "down") void this.openLink();
  }

  private async openLink(): Promise<void> {
    const identity = this.identity;
    if (!identity) return;
    const generation = ++this.linkGeneration;
    this.link = { state: "connecting" };
    this.snapshotAsked = false;
    try {
      const since = this.mirror.seqOrUndefined;
      const request = await linkRequest(this.config.HUB_SECRET, identity.guildId, { relay: identity.name, since });
      const response = await hubStub(this.env, this.config, identity.guildId).fetch(request);
      const ws = response.webSocket;
      if (!ws) throw new Error(`the hub answered ${response.status}`);
      ws.accept();
      if (generation !== this.linkGeneration) return closeSocket(ws, 1000, "superseded");
      ws.addEventListener("message", (event) => this.onHubFrame(generation, event.data));
      ws.addEventListener("close", (event) => this.onLinkDown(generation, `closed ${event.code} ${event.reason}`));
      ws.addEventListener("error", () => this.onLinkDown(generation, "error"));
      this.link = { state: "open", ws };
      this.linkFailures = 0;
      log("info", "LobbyRelay linked", { relay: this.name, since });
    } catch (error) {
      this.onLinkDown(generation, `could not link: ${errorFields(error).error}`);
    }
  }

  private onLinkDown(generation: number, why: string): void {
    if (generation !== this.linkGeneration) return;
    this.linkGeneration++;
    if (this.link.state === "open") closeSocket(this.link.ws, 1000);
    this.link = { state: "down" };
    if (!this.wantsLink()) return;
    const delay = backoffDelay(this.linkFailures++, LINK_BACKOFF);
    log("warn", "LobbyRelay link down", { relay: this.name, why, retryMs: delay, seq: this.mirror.seqOrUndefined });
    const timer = setTimeout(() => {
      if (this.link.state !== "retrying" || this.link.timer !== timer) return;
      this.link = { state: "down" };
      if (this.wantsLink()) void this.openLink();
    }, delay);
    this.link = { state: "retrying", timer };
  }

  private onHubFrame(generation: number, data: unknown): void {
    if (generation !== this.linkGeneration) return;
    try {
      const step = this.mirror.receive(typeof data === "string" ? parseJson(data) : undefined);
      switch (step.kind) {
        case "events":
        case "gap":
          this.counters.events += step.fresh.length;
          this.coalescer.add(step.fresh);
          if (step.kind === "gap") {
            log("warn", "LobbyRelay missed events: linking again to fill the gap", { relay: this.name, since: step.since });
            this.relink(generation);
            return;
          }
          break;
        case "reset":
          this.restartSockets();
          break;
        case "snapshot":
          this.snapshotAsked = false;
          break;
        case "ignored":
          return;
      }
      this.serveAwaiting();
    } catch (error) {
      log("error", "LobbyRelay hub frame failed", { relay: this.name, ...errorFields(error) });
    }
  }

  /** Drops the current link and links again at once with the seq the mirror has. */
  private relink(generation: number): void {
    if (generation !== this.linkGeneration) return;
    this.linkGeneration++;
    if (this.link.state === "open") closeSocket(this.link.ws, 1000, "gap");
    this.link = { state: "down" };
    void this.openLink();
  }

  /**
   * The relay's gap was beyond the hub's buffer (its link was down that long) and its copy started over: its live
   * sockets are closed 1012 and resume, getting a snapshot as any resume outside the buffer does. Rare, and it keeps
   * the protocol's promise that a snapshot only answers an auth or a filter change.
   */
  private restartSockets(): void {
    this.coalescer.flushNow();
    const live: WebSocket[] = [];
    this.sockets.forEachLive((_attachment, ws) => live.push(ws));
    for (const ws of live) {
      this.sockets.forget(ws);
      closeSocket(ws, CloseCode.serviceRestart, "relay restarted");
    }
    log("warn", "LobbyRelay started over from a snapshot: its sockets resume", { relay: this.name, sockets: live.length, seq: this.mirror.seq });
  }

  private askSnapshot(): void {
    if (this.snapshotAsked || this.link.state !== "open") return;
    this.snapshotAsked = true;
    this.link.ws.send(JSON.stringify({ type: "snapshot" }));
  }

  private lingerThenUnlink(): void {
    if (this.lingerTimer !== undefined || this.link.state === "down") return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      if (this.wantsLink()) return;
      this.linkGeneration++;
      if (this.link.state === "open") closeSocket(this.link.ws, 1000, "no sockets left");
      if (this.link.state === "retrying") clearTimeout(this.link.timer);
      this.link = { state: "down" };
      log("info", "LobbyRelay unlinked: no sockets left", { relay: this.name });
    }, LINK_LINGER_MS);
  }

  // --- identity

  private bindIdentity(guildId: string, name: string | null): void {
    if (!name || !name.startsWith(`${guildId}/`)) throw new Error("relay request without its name");
    if (!this.identity) this.identity = { guildId, name };
    else if (this.identity.name !== name) throw new Error(`LobbyRelay ${this.identity.name} asked to serve as ${name}`);
  }
}
