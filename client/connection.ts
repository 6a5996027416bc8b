// Runtime imports from ../protocol only from its zod-free modules: the browser bundle carries no zod.
import { backoffDelay, type BackoffPolicy } from "../protocol/backoff.js";
import { SocketLimits } from "../protocol/limits.js";
import { takeToken, type Bucket, type BucketPolicy } from "../protocol/token-bucket.js";
import { closeAction } from "./close-codes.js";
import type { PresenceStore } from "./presence.js";
import type { RoomFilterBook } from "./room-filter.js";
import { AnyEventEnvelope, knownEvents, ServerMessage } from "./schemas.js";
import type { HubTransport, TransportFactory } from "./transport.js";
import type { EventEnvelope } from "./types.js";
import { invalid } from "./validate.js";

/**
 * - `connecting` / `resuming`: working on a connection (`resuming` once the store holds a picture to resume from);
 * - `live`: authenticated, and the store holds the hub's picture: the snapshot, or a resume's replay, is applied;
 * - `offline`: closed by the app (`close()`), or the browser is offline (it reconnects when back online);
 * - `unauthorized`: the hub refused a token and then a freshly fetched one (close 4401 twice in a row), or no
 *   fresh token could be fetched after a 4401: the user must sign in again, then the app calls `reconnect()`;
 * - `failed`: gave up (`reason`): the hub closed 4403, this account may not see this guild (`forbidden`), or
 *   `maxRetries` connections in a row failed (`retries`); final until `reconnect()`.
 */
export type ConnectionStatus = "connecting" | "live" | "resuming" | "offline" | "unauthorized" | "failed";

/** What a UI shows about the connection; a new object on every change (for useSyncExternalStore). */
export interface ConnectionState {
  status: ConnectionStatus;
  /** Why: the last connection's end while retrying, what went wrong once stopped. */
  detail?: string | undefined;
  /** Connections in a row that ended before staying live for minUptimeMs. */
  attempt: number;
  /** When the next attempt starts (epoch ms), while waiting to retry. */
  retryAt?: number | undefined;
  /** Why `failed`. */
  reason?: "forbidden" | "retries" | undefined;
}

/**
 * Where the connection is. An attempt goes opening → authenticating → syncing → live; `disconnect()` ends any
 * attempt and leads to waiting (then opening again), offline, unauthorized or failed.
 */
type Phase =
  | { name: "idle" }
  /** Waiting out the backoff before the next attempt. */
  | { name: "waiting"; retryAt: number }
  /** The transport is opening, or the token is being fetched. */
  | { name: "opening" }
  /** The auth is sent; auth.ok is awaited. */
  | { name: "authenticating" }
  /** auth.ok came (the hub's seq then: `ackSeq`); the snapshot, or the replay up to ackSeq, is awaited. */
  | { name: "syncing"; ackSeq: number; awaiting: "snapshot" | "replay" }
  | { name: "live"; since: number }
  /** The browser is offline: no attempt until it is back. */
  | { name: "offline" }
  | { name: "unauthorized" }
  | { name: "failed"; reason: "forbidden" | "retries" }
  /** close(). */
  | { name: "closed" };
type PhaseName = Phase["name"];

/** The moves the machine may make; `reconnect()` may start over (opening) and `close()` stop (closed) from anywhere. */
const MOVES: Record<PhaseName, readonly PhaseName[]> = {
  idle: [],
  waiting: ["offline"],
  opening: ["authenticating", "waiting", "offline", "unauthorized", "failed"],
  authenticating: ["syncing", "waiting", "offline", "unauthorized", "failed"],
  syncing: ["live", "waiting", "offline", "unauthorized", "failed"],
  live: ["waiting", "offline", "unauthorized", "failed"],
  offline: [],
  unauthorized: [],
  failed: [],
  closed: [],
};

/** The status an app sees in each phase. */
function statusOf(phase: Phase, hasPicture: boolean): ConnectionStatus {
  switch (phase.name) {
    case "idle":
    case "closed":
    case "offline":
      return "offline";
    case "live":
    case "unauthorized":
    case "failed":
      return phase.name;
    default:
      return hasPicture ? "resuming" : "connecting";
  }
}

export interface ConnectionSettings {
  getToken: () => Promise<string>;
  openTransport: TransportFactory;
  url: string;
  maxRetries: number | undefined;
  backoff: BackoffPolicy;
  refreshBeforeExpiryMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  connectTimeoutMs: number;
  minUptimeMs: number;
  random: () => number;
}

export interface ConnectionOutputs {
  /** A new public state; `told`: its status is new or it carries a new detail (what onStatus hears). */
  state(state: ConnectionState, told: boolean): void;
  /** A known event, applied to the store. */
  event(envelope: EventEnvelope): void;
}

/**
 * The hub's budget of first auths per user (a burst, then one per interval; past it, 4429), with the interval a
 * quarter longer so network jitter cannot make two arrive closer than the hub allows. Each attempt spends one,
 * whatever the backoff options say (an app's short backoff cannot take the SDK past the hub's budget), and so does
 * each new stream a transport opens on a live connection (SSE restarts its stream for a filter or a token).
 */
const FIRST_AUTH_PACING: BucketPolicy = { capacity: SocketLimits.firstAuthBurst, refillPerSecond: 1000 / (SocketLimits.firstAuthIntervalMs * 1.25) };

/** setTimeout's largest delay (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The connection to the hub as an explicit state machine: `setState` is the one place the phase changes, and
 * `disconnect` the one path out of an attempt, which a table of close codes turns into a retry or a stop. Every
 * timer and transport callback is bound to the attempt's generation, so a stale one never acts.
 */
export class Connection {
  state: ConnectionState = { status: "offline", attempt: 0 };
  private phase: Phase = { name: "idle" };
  private transport: HubTransport | undefined;
  /** Which attempt is current: bumped when one starts and when one is torn down. */
  private generation = 0;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** Attempts in a row that ended before staying live for minUptimeMs. */
  private failures = 0;
  /** 4401 closes since the last auth.ok. */
  private refusedTokens = 0;
  /** Messages heard on the current attempt, pongs included: the liveness check compares counts. */
  private heard = 0;
  /** Whether the current attempt has had its auth.ok. */
  private acknowledged = false;
  /** The seq the current attempt's auth resumes from (`since`), if it resumes. */
  private resumedFrom: number | undefined;
  /** First auths spent so far, against FIRST_AUTH_PACING. */
  private firstAuths: Bucket | undefined;
  /** A filter change waits for the hub's budget. */
  private filterWaiting = false;
  private browserOffline = false;

  constructor(
    private readonly settings: ConnectionSettings,
    readonly presence: PresenceStore,
    private readonly filter: RoomFilterBook,
    private readonly outputs: ConnectionOutputs,
  ) {}

  /**
   * Starts an attempt (at first, from `reconnect()`, after the backoff or when a retry is brought forward): now, or
   * once the attempt budget has room.
   */
  open(): void {
    this.teardown(1000, "client reconnects");
    const generation = this.generation;
    this.setState({ name: "opening" });
    const delay = this.takeFirstAuth();
    if (delay > 0) {
      this.setState({ name: "waiting", retryAt: Date.now() + delay }); // the last connection's end stays the detail
      return this.later(delay, () => this.open());
    }
    this.heard = 0;
    this.later(this.settings.connectTimeoutMs, () => this.phase.name !== "live" && this.disconnect(undefined, "connect timeout"));
    const current = (run: () => void) => () => generation === this.generation && run();
    this.transport = this.settings.openTransport(this.settings.url, {
      onOpen: current(() => void this.authenticate(generation)),
      onMessage: (message) => current(() => this.receive(message))(),
      onAlive: current(() => this.heard++),
      onClose: (code, reason) => current(() => this.disconnect(code, reason))(),
      takeFirstAuth: () => this.takeFirstAuth(),
    });
  }

  /** close(): no attempt until `open()`. */
  close(): void {
    this.teardown(1000, "client closed");
    this.setState({ name: "closed" });
  }

  /** Skips the wait for a scheduled retry (or the browser's return online); an attempt in progress is left to finish. */
  retryNow(): void {
    if (this.phase.name === "waiting" || this.phase.name === "offline") this.open();
  }

  /** The browser's online/offline events: a guess, so a live connection is kept; one in progress is dropped. */
  setBrowserOffline(offline: boolean): void {
    this.browserOffline = offline;
    if (!offline) return this.retryNow();
    if (["waiting", "opening", "authenticating", "syncing"].includes(this.phase.name)) {
      this.teardown(1000, "the browser is offline");
      this.setState({ name: "offline" }, "the browser is offline");
    }
  }

  /** Forgets past failures and refused tokens (reconnect()). */
  resetRetries(): void {
    this.failures = 0;
    this.refusedTokens = 0;
  }

  /** The filter changed (the book already holds it): sent on an authenticated attempt, else by the next auth. */
  filterChanged(): void {
    // Until the hub's answering snapshot, events follow the old filter: no gap detection.
    this.presence.detectGaps = false;
    if (this.acknowledged) this.paceFilter();
  }

  /** The one place the phase changes; the public state, and its listeners, follow. */
  private setState(next: Phase, detail?: string): void {
    const from = this.phase.name;
    if (next.name !== "opening" && next.name !== "closed" && !MOVES[from].includes(next.name)) {
      throw new Error(`connection: no move from ${from} to ${next.name}`);
    }
    this.phase = next;
    this.publish(detail);
  }

  /** Publishes the public state when it changed: a new status, detail, retry time or attempt count. */
  private publish(detail?: string): void {
    const previous = this.state;
    const status = statusOf(this.phase, this.presence.hasSnapshot);
    const retryAt = this.phase.name === "waiting" ? this.phase.retryAt : undefined;
    const reason = this.phase.name === "failed" ? this.phase.reason : undefined;
    const same = status === previous.status;
    if (same && detail === undefined && retryAt === previous.retryAt && this.failures === previous.attempt) return;
    // A detail stays while the status does: "resuming" keeps saying why the last connection ended.
    this.state = { status, attempt: this.failures, detail: detail ?? (same ? previous.detail : undefined), retryAt, reason };
    this.outputs.state(this.state, !same || detail !== undefined);
  }

  /**
   * The one way an attempt ends (a close code from the transport, or the client's own reason without one), and the
   * one decision about what follows: retry after a backoff, or stop.
   */
  private disconnect(code: number | undefined, reason: string): void {
    const wasLive = this.phase.name === "live" ? this.phase.since : undefined;
    this.teardown(4000, reason);
    if (wasLive !== undefined && Date.now() - wasLive >= this.settings.minUptimeMs) this.failures = 0;
    const detail = code === undefined ? reason : `closed ${code}${reason ? `: ${reason}` : ""}`;
    const { action, why } = closeAction(code);
    if (action === "forbidden") return this.setState({ name: "failed", reason: "forbidden" }, why);
    if (action === "refresh-token" && ++this.refusedTokens >= 2) return this.setState({ name: "unauthorized" }, "fresh token refused too: sign in again");
    if (this.browserOffline) return this.setState({ name: "offline" }, "the browser is offline");
    const { maxRetries, backoff, random } = this.settings;
    if (maxRetries !== undefined && this.failures >= maxRetries) {
      return this.setState({ name: "failed", reason: "retries" }, `gave up after ${this.failures + 1} tries (${detail})`);
    }
    const delay =
      action === "back-off"
        ? // Told to slow down: the longest delay, with jitter so sockets refused together do not return together.
          backoff.maxMs * (0.5 + random() / 2)
        : this.failures === 0
          ? 0
          : backoffDelay(this.failures, backoff, random);
    this.failures++;
    this.setState({ name: "waiting", retryAt: Date.now() + delay }, detail);
    this.later(delay, () => this.open());
  }

  /** Spends one of the hub's first auths (FIRST_AUTH_PACING) and returns 0, or returns the ms until one is available. */
  private takeFirstAuth(): number {
    const { bucket, waitSeconds } = takeToken(this.firstAuths, FIRST_AUTH_PACING, Date.now());
    if (waitSeconds > 0) return Math.ceil(waitSeconds * 1000);
    this.firstAuths = bucket;
    return 0;
  }

  /** Drops the current attempt, if any: its transport, its timers and its callbacks (the generation moves on). */
  private teardown(code: number, reason: string): void {
    this.generation++;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.transport?.close(code, reason);
    this.transport = undefined;
    this.acknowledged = this.filterWaiting = false;
  }

  private async authenticate(generation: number): Promise<void> {
    let token: string;
    try {
      token = await this.settings.getToken();
    } catch (error) {
      if (generation !== this.generation) return;
      const why = error instanceof Error ? error.message : String(error);
      if (this.refusedTokens === 0) return this.disconnect(undefined, `no token: ${why}`);
      // The hub refused the last token and no fresh one can be had: the user has to sign in again.
      this.teardown(4000, "no token");
      return this.setState({ name: "unauthorized" }, `no fresh token after 4401: ${why}`);
    }
    if (generation !== this.generation) return;
    const rooms = this.filter.authSent(Date.now());
    this.resumedFrom = this.presence.hasSnapshot && this.filter.exact ? this.presence.seq : undefined;
    const since = this.resumedFrom === undefined ? {} : { since: this.resumedFrom };
    this.transport!.authenticate({ token, ...since, ...(rooms ? { rooms } : {}), batch: true });
    this.setState({ name: "authenticating" });
    this.scheduleRefresh(token);
    this.schedulePing();
  }

  /** One message from the hub; a batch frame's envelopes each as if they came alone, none after one that ended the attempt. */
  private receive(message: unknown): void {
    this.heard++; // any message proves the transport is alive
    const generation = this.generation;
    for (const one of isBatch(message) ? message.events : [message]) if (generation === this.generation) this.handle(one);
  }

  private handle(json: unknown): void {
    const message = ServerMessage(json);
    if (message === invalid) return this.handleUnknown(json);
    if (message.type === "ack") return this.onAck(message.seq);
    if (message.type === "snapshot") {
      // Until the newest filter's answer, events follow an older filter: no gap detection, no replay.
      this.presence.detectGaps = this.filter.snapshot() && this.filter.rooms === undefined;
      this.presence.applySnapshot(message);
    } else if (this.presence.applyEvent(message) === "gap") {
      // Missed something: resume from the last seq (the hub replays, or sends a snapshot).
      return this.disconnect(undefined, "sequence gap");
    } else {
      this.outputs.event(message);
    }
    this.goLiveWhenSynced(message.type === "snapshot");
  }

  private onAck(seq: number): void {
    this.refusedTokens = 0;
    const first = !this.acknowledged;
    this.acknowledged = true;
    this.filter.acknowledged(first);
    this.paceFilter(); // a change made while authenticating
    if (this.phase.name !== "authenticating") return; // a token refresh's ack, or a restarted stream's
    // A resume is answered by a replay of the events after `since`, or by a snapshot when the hub cannot replay (or
    // is behind `since`). With a room filter, other rooms' voice events are not replayed, so the replay's end cannot
    // be told from the seqs: the store keeps the last connection's picture and is live at once, the replay
    // following as live events do.
    const replay = this.resumedFrom !== undefined && this.resumedFrom <= seq;
    this.setState({ name: "syncing", ackSeq: seq, awaiting: replay ? "replay" : "snapshot" });
    if (replay && this.filter.rooms !== undefined) return this.goLive();
    this.goLiveWhenSynced(false);
  }

  /** `live` means the picture is here: the snapshot, or every replayed event up to the ack's seq, is applied. */
  private goLiveWhenSynced(snapshot: boolean): void {
    const phase = this.phase;
    if (phase.name !== "syncing") return;
    if (snapshot || (phase.awaiting === "replay" && this.presence.seq >= phase.ackSeq)) this.goLive();
  }

  private goLive(): void {
    this.setState({ name: "live", since: Date.now() });
  }

  /** A message ServerMessage does not describe: a newer hub's event (apply its seq), or something malformed. */
  private handleUnknown(json: unknown): void {
    const envelope = AnyEventEnvelope(json);
    if (envelope === invalid) return this.publish("ignored a malformed message");
    if (knownEvents.has(envelope.event)) {
      // A known event that does not validate cannot be applied; skipping it would leave the rooms wrong.
      this.filter.invalidate();
      return this.disconnect(undefined, `unreadable ${envelope.event} at seq ${envelope.seq}: resyncing`);
    }
    if (this.presence.skip(envelope.seq) === "gap") return this.disconnect(undefined, "sequence gap");
    this.goLiveWhenSynced(false);
  }

  /** Sends the newest filter now if the hub's budget allows, else once it does; changes meanwhile coalesce. */
  private paceFilter(): void {
    if (this.filterWaiting) return;
    const step = this.filter.next(Date.now());
    if (!step) return;
    if ("send" in step) return this.transport?.setRooms(step.send);
    this.filterWaiting = true;
    this.later(step.waitMs, () => {
      this.filterWaiting = false;
      this.paceFilter();
    });
  }

  /** A ping every interval; no answer (any message) within pongTimeoutMs drops the attempt at once. */
  private schedulePing(): void {
    const { pingIntervalMs, pongTimeoutMs } = this.settings;
    const ping = () => {
      const before = this.heard;
      this.transport!.ping();
      this.later(pongTimeoutMs, () => this.heard === before && this.disconnect(undefined, "no pong"));
      this.later(Math.max(pingIntervalMs, pongTimeoutMs), ping);
    };
    this.later(pingIntervalMs, ping);
  }

  /** Sends a fresh token on the open transport shortly before the current one expires. */
  private scheduleRefresh(token: string): void {
    const expiresAt = tokenExpiry(token);
    if (expiresAt === undefined) return;
    const now = Date.now();
    const due = expiresAt - this.settings.refreshBeforeExpiryMs;
    // A token already within refreshBeforeExpiryMs of its expiry is refreshed halfway there: at once (every
    // second, with short-lived tokens) would go past the hub's re-auth rate (4429).
    const generation = this.generation;
    this.at(Math.max(now + 1_000, due > now ? due : (now + expiresAt) / 2), async () => {
      try {
        const fresh = await this.settings.getToken();
        if (generation !== this.generation) return;
        // A cached token (no later expiry) would change nothing for the hub: not sent, asked for again later.
        if ((tokenExpiry(fresh) ?? Infinity) > expiresAt) this.transport!.authenticate({ token: (token = fresh) });
        this.scheduleRefresh(token);
      } catch {
        // The hub closes with 4401 at expiry; the reconnect asks for a token again.
      }
    });
  }

  /** Runs `run` at `deadline` if the attempt is still current, re-arming in steps that setTimeout can hold. */
  private at(deadline: number, run: () => void): void {
    const generation = this.generation;
    const wait = deadline - Date.now();
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (generation !== this.generation) return;
        if (wait > MAX_TIMER_MS) this.at(deadline, run);
        else run();
      },
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    this.timers.add(timer);
  }

  private later(ms: number, run: () => void): void {
    this.at(Date.now() + ms, run);
  }
}

function isBatch(json: unknown): json is { events: unknown[] } {
  return typeof json === "object" && json !== null && (json as { type?: unknown }).type === "batch" && Array.isArray((json as { events?: unknown }).events);
}

/** Reads `exp` (ms) from a JWT without verifying it: the client only needs to know when to refresh. */
export function tokenExpiry(token: string): number | undefined {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: unknown };
    return typeof payload.exp === "number" ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
