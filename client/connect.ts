import { backoffDelay, type BackoffPolicy } from "../protocol/backoff.js";
import { parseJson } from "../protocol/json.js";
import { callListener } from "./listeners.js";
import { PresenceStore } from "./presence.js";
import { checkRoomFilter } from "./room-filter.js";
import { CloseCode } from "../protocol/codes.js";
import { SocketLimits } from "../protocol/limits.js";
import { takeToken, type Bucket, type BucketPolicy } from "../protocol/token-bucket.js";
import { AnyEventEnvelope, knownEvents, ServerMessage } from "./schemas.js";
import { socketFactory } from "./sse.js";
import type { Transport, WebSocketConstructor, WebSocketLike } from "./transport.js";
import type { EventEnvelope } from "./types.js";
import { invalid } from "./validate.js";

/**
 * - `connecting` / `resuming`: working on a connection (resuming once a snapshot has arrived);
 * - `live`: authenticated (auth.ok) and receiving events;
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
  detail?: string;
  /** Connections in a row that ended before staying live for minUptimeMs. */
  attempt: number;
  /** When the next attempt starts (epoch ms), while waiting to retry. */
  retryAt?: number;
  /** Why `failed`. */
  reason?: "forbidden" | "retries";
}

/** The events of an EventEnvelope, by name: `on(name, …)` listeners get these. */
export type EnvelopeOf<E extends EventEnvelope["event"]> = Extract<EventEnvelope, { event: E }>;
export type EventListener<E extends EventEnvelope["event"]> = (payload: EnvelopeOf<E>["payload"], envelope: EnvelopeOf<E>) => void;

/** What the client listens to in a browser: the window's online/offline and the document's visibility. */
export interface BrowserSignals {
  window?: EventTarget;
  document?: EventTarget & { readonly visibilityState: string };
}

// Part of connect()'s options: tests and custom transports import them from here too.
export type { WebSocketConstructor, WebSocketLike } from "./transport.js";

export interface ConnectOptions {
  /** wss://<edge>/ws (add ?guildId= in multi-guild deployments). */
  url: string;
  /** Returns a valid app JWT; called on every (re)connect and before the current token expires. */
  getToken: () => Promise<string>;
  /** Receive voice events only for these rooms (at most 50 snowflakes; room events always arrive); change with `setRooms()`. */
  rooms?: string[];
  onEvent?: (event: EventEnvelope) => void;
  onStatus?: (status: ConnectionStatus, detail?: string) => void;
  /** Give up (status `failed`) after this many connections in a row failed; unbounded by default. */
  maxRetries?: number;
  /** Defaults to the global `window` and `document` where they exist; `false` listens to neither. */
  browser?: BrowserSignals | false;
  WebSocket?: WebSocketConstructor;
  /**
   * "websocket" (the default), "sse" (server-sent events over fetch streaming, the token in a header) or "auto"
   * (WebSockets until one closes without ever opening, then SSE for the rest of this connection's life).
   */
  transport?: Transport;
  backoff?: BackoffPolicy;
  /** Send a fresh token this long before the current one expires. */
  refreshBeforeExpiryMs?: number;
  pingIntervalMs?: number;
  /** A socket that has not answered a ping within this long is treated as dead. */
  pongTimeoutMs?: number;
  /** A socket that is not open and authenticated (auth.ok) within this long is abandoned and retried. */
  connectTimeoutMs?: number;
  /** A connection counts as a success, resetting the backoff, only once it has stayed live this long. */
  minUptimeMs?: number;
  random?: () => number;
}

export interface RealtimeConnection {
  readonly presence: PresenceStore;
  readonly status: ConnectionStatus;
  readonly state: ConnectionState;
  /** Calls `listener` with each new state; returns the unsubscribe. */
  subscribe(listener: (state: ConnectionState) => void): () => void;
  /** Calls `listener` for each event named `event` (`"*"`: every event); returns the unsubscribe. */
  on<E extends EventEnvelope["event"] | "*">(event: E, listener: EventListener<E extends "*" ? EventEnvelope["event"] : E>): () => void;
  /**
   * Changes the room filter on the live connection (`undefined`: every room); the hub answers with a fresh snapshot.
   * Throws a RangeError for more than 50 rooms or an id that is not a snowflake (the hub would refuse it).
   */
  setRooms(rooms: string[] | undefined): void;
  close(): void;
  /** Starts over at once with a fresh token: after `unauthorized` (the user signed in again), `failed` or `close()`. */
  reconnect(): void;
}

export const CONNECT_DEFAULTS = {
  backoff: { minMs: 500, maxMs: 30_000, factor: 2 },
  refreshBeforeExpiryMs: 60_000,
  pingIntervalMs: 20_000,
  pongTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  minUptimeMs: 5_000,
} as const satisfies Partial<ConnectOptions>;

/**
 * The hub's budget for a socket's room filter changes, refilled a quarter slower: network jitter must not make two
 * changes arrive closer than the hub allows (4429).
 */
const FILTER_CHANGE_PACE: BucketPolicy = { capacity: SocketLimits.roomsBurst, refillPerSecond: 1000 / (SocketLimits.roomsIntervalMs * 1.25) };

/** setTimeout's largest delay (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Connects to the hub and keeps a live presence store: first-message auth, resume from the last seq after any
 * drop (or a fresh snapshot when the hub says so), backoff with full jitter, token refresh before expiry, a
 * connect timeout and a ping/pong liveness check that abandons a dead socket at once.
 */
export function connect(options: ConnectOptions): RealtimeConnection {
  const settings = { ...CONNECT_DEFAULTS, ...options };
  checkRoomFilter(options.rooms);
  const Socket = socketFactory(options.transport ?? "websocket", options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket);
  const random = options.random ?? Math.random;
  let rooms = options.rooms;
  const presence = new PresenceStore(rooms === undefined);
  let state: ConnectionState = { status: "offline", attempt: 0 };
  const stateListeners = new Set<(state: ConnectionState) => void>();
  const eventListeners = new Map<string, Set<(payload: unknown, envelope: EventEnvelope) => void>>();
  let socket: WebSocketLike | undefined;
  /** Whether `socket` is authenticated, so it may be sent a room filter. */
  let authenticated = false;
  /** Connections in a row that ended before staying live for minUptimeMs. */
  let failures = 0;
  /** 4401 closes since the last auth.ok. */
  let refusedTokens = 0;
  let stopped = false;
  /** The browser said it is offline: no retries until it says online. */
  let browserOffline = false;
  /** Set when a replay cannot make the state exact (an unreadable known event, a changed room filter): a snapshot heals. */
  let needSnapshot = false;
  /** The filter the current socket was last given (by its auth or a rooms message). */
  let sentRooms: string[] | undefined;
  /**
   * Snapshots still to come from the current socket for earlier filters: only the one answering the newest filter
   * makes the state exact for it (and a later replay, which follows the newest filter, safe).
   */
  let unansweredFilters = 0;
  /** The hub's budget for this socket's filter changes, mirrored so a change waits for it rather than costing a 4429. */
  let filterBudget: Bucket | undefined;
  let filterSendPending = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  /** Updates the state; `onStatus` hears of a new status, or of a detail, as before the state API. */
  const setStatus = (status: ConnectionStatus, detail?: string, retryAt?: number, reason?: ConnectionState["reason"]) => {
    const same = status === state.status;
    if (same && detail === undefined && retryAt === state.retryAt && failures === state.attempt) return;
    state = { status, attempt: failures, detail: detail ?? (same ? state.detail : undefined), retryAt, reason };
    if (!same || detail !== undefined) callListener(() => options.onStatus?.(status, detail));
    for (const listener of stateListeners) callListener(() => listener(state));
  };
  /** Runs `run` at `deadline`, re-arming in steps that setTimeout can hold. */
  const at = (deadline: number, run: () => void) => {
    const wait = deadline - Date.now();
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        if (wait > MAX_TIMER_MS) at(deadline, run);
        else run();
      },
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    timers.add(timer);
  };
  const later = (ms: number, run: () => void) => at(Date.now() + ms, run);
  const clearTimers = () => {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  };
  /** Stops listening to a socket and closes it without waiting for its close event. */
  const abandon = (ws: WebSocketLike, code: number, reason: string) => {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => undefined; // the `ws` package throws on an "error" without a listener
    try {
      ws.close(code, reason.slice(0, 100));
    } catch {
      // Already closed.
    }
  };
  const stopAs = (status: ConnectionStatus, detail: string, reason?: ConnectionState["reason"]) => {
    stopped = true;
    setStatus(status, detail, undefined, reason);
  };
  const sendRooms = (ws: WebSocketLike) => {
    ws.send(JSON.stringify({ type: "rooms", ...(rooms ? { rooms } : {}) }));
    sentRooms = rooms;
    unansweredFilters++;
  };
  /** Sends the newest filter now if the hub's budget allows, else once it does; changes meanwhile coalesce. */
  const paceRooms = (ws: WebSocketLike) => {
    if (filterSendPending) return;
    const { bucket, waitSeconds } = takeToken(filterBudget, FILTER_CHANGE_PACE, Date.now());
    filterBudget = bucket;
    if (waitSeconds === 0) return sendRooms(ws);
    filterSendPending = true;
    later(waitSeconds * 1000, () => {
      filterSendPending = false;
      if (socket === ws && sentRooms !== rooms) paceRooms(ws);
    });
  };

  /** Decides what follows a connection's end: retry (with backoff) or stop. */
  const afterEnd = (code: number | undefined, reason: string, liveSince: number | undefined) => {
    if (stopped) return setStatus("offline");
    if (liveSince !== undefined && Date.now() - liveSince >= settings.minUptimeMs) failures = 0;
    const detail = code === undefined ? reason : `closed ${code}${reason ? `: ${reason}` : ""}`;
    if (code === CloseCode.guildNotAllowed) return stopAs("failed", "guild not allowed for this account", "forbidden");
    if (code === CloseCode.unauthorized && ++refusedTokens >= 2) {
      return stopAs("unauthorized", "fresh token refused too: sign in again");
    }
    if (browserOffline) return setStatus("offline", "the browser is offline");
    if (options.maxRetries !== undefined && failures >= options.maxRetries) {
      return stopAs("failed", `gave up after ${failures + 1} tries (${detail})`, "retries");
    }
    const delay =
      code === CloseCode.tooMany
        ? // Told to back off: the longest delay, with jitter so sockets refused together do not return together.
          settings.backoff.maxMs * (0.5 + random() / 2)
        : failures === 0
          ? 0
          : backoffDelay(failures, settings.backoff, random);
    failures++;
    setStatus(presence.hasSnapshot ? "resuming" : "connecting", detail, Date.now() + delay);
    later(delay, open);
  };

  const open = () => {
    if (stopped) return;
    setStatus(presence.hasSnapshot ? "resuming" : "connecting");
    const ws = new Socket(options.url);
    socket = ws;
    authenticated = false;
    unansweredFilters = 0;
    filterBudget = undefined; // a new socket's budget is full
    filterSendPending = false;
    let liveSince: number | undefined;
    let heard = 0; // messages received, pongs included

    /** Ends this connection once: by the socket's close event (code) or by giving up on it (no code). */
    const end = (code: number | undefined, reason: string) => {
      if (socket !== ws) return;
      socket = undefined;
      clearTimers();
      if (code === undefined) abandon(ws, 4000, reason);
      afterEnd(code, reason, liveSince);
    };

    later(settings.connectTimeoutMs, () => liveSince === undefined && end(undefined, "connect timeout"));

    ws.onopen = async () => {
      let token: string;
      try {
        token = await options.getToken();
      } catch (error) {
        if (socket !== ws) return;
        const why = error instanceof Error ? error.message : String(error);
        if (refusedTokens > 0) {
          // The hub refused the last token and no fresh one can be had: the user has to sign in again.
          socket = undefined;
          clearTimers();
          abandon(ws, 4000, "no token");
          return stopAs("unauthorized", `no fresh token after 4401: ${why}`);
        }
        return end(undefined, `no token: ${why}`);
      }
      if (socket !== ws) return;
      const since = presence.hasSnapshot && !needSnapshot ? { since: presence.seq } : {};
      sentRooms = rooms;
      ws.send(JSON.stringify({ type: "auth", token, ...since, ...(rooms ? { rooms } : {}), batch: true }));
      scheduleRefresh(ws, token);
      const ping = () => {
        if (socket !== ws) return;
        const before = heard;
        ws.send("ping");
        later(settings.pongTimeoutMs, () => heard === before && end(undefined, "no pong"));
        later(Math.max(settings.pingIntervalMs, settings.pongTimeoutMs), ping);
      };
      later(settings.pingIntervalMs, ping);
    };

    ws.onmessage = (event) => {
      heard++; // any message proves the socket is alive
      const data = String(event.data);
      if (data === "pong") return;
      const json = parseJson(data);
      // A batch frame carries several envelopes published together (this client opts in with `batch: true`):
      // each is handled as if it came alone, and none after one that ended the connection (a gap).
      if (isBatch(json)) {
        for (const one of json.events) if (socket === ws) handle(one);
        return;
      }
      handle(json);
    };

    const handle = (json: unknown) => {
      const message = ServerMessage(json);
      if (message === invalid) return onUnknown(json);
      if (message.type === "ack") {
        liveSince ??= Date.now();
        refusedTokens = 0;
        const firstAck = !authenticated;
        authenticated = true;
        if (sentRooms !== rooms) {
          // setRooms() while this socket was authenticating: its auth carried the previous filter, and the hub's
          // answer to that auth may be a snapshot for it. Counted as unanswered, so it cannot pass for the answer
          // to the new filter (if the auth was answered by a replay instead, the next resume asks for a snapshot).
          // A token refresh's ack (a change still waiting for the hub's budget) is answered by no snapshot.
          if (firstAck) unansweredFilters++;
          paceRooms(ws);
        }
        setStatus("live");
      } else if (message.type === "snapshot") {
        if (unansweredFilters) unansweredFilters--;
        // Until the newest filter's answer (or while it still waits to be sent), events follow an older filter:
        // no gap detection, no replay.
        const olderFilter = unansweredFilters > 0 || sentRooms !== rooms;
        needSnapshot &&= olderFilter;
        presence.detectGaps = !olderFilter && rooms === undefined;
        presence.applySnapshot(message);
      } else if (presence.applyEvent(message) === "gap") {
        // Missed something: reconnect and let the hub replay from our seq (or send a snapshot).
        end(undefined, "sequence gap");
      } else {
        callListener(() => options.onEvent?.(message));
        for (const name of [message.event, "*"]) {
          for (const listener of eventListeners.get(name) ?? []) callListener(() => listener(message.payload, message));
        }
      }
    };

    /** A message ServerMessage does not describe: a newer hub's event (apply its seq), or something malformed. */
    const onUnknown = (json: unknown) => {
      const envelope = AnyEventEnvelope(json);
      if (envelope === invalid) return setStatus(state.status, "ignored a malformed message", state.retryAt);
      if (knownEvents.has(envelope.event)) {
        // A known event that does not validate cannot be applied; skipping it would leave the rooms wrong.
        needSnapshot = true;
        return end(undefined, `unreadable ${envelope.event} at seq ${envelope.seq}: resyncing`);
      }
      if (presence.skip(envelope.seq) === "gap") end(undefined, "sequence gap");
    };

    ws.onclose = (event) => end(event.code, event.reason);
    ws.onerror = () => undefined; // onclose follows and decides
  };

  /** Sends a fresh token on the open socket shortly before the current one expires. */
  const scheduleRefresh = (ws: WebSocketLike, token: string) => {
    const expiresAt = tokenExpiry(token);
    if (expiresAt === undefined) return;
    const now = Date.now();
    const due = expiresAt - settings.refreshBeforeExpiryMs;
    // A token already within refreshBeforeExpiryMs of its expiry is refreshed halfway there: at once (every
    // second, with short-lived tokens) would go past the hub's re-auth rate (4429).
    at(Math.max(now + 1_000, due > now ? due : (now + expiresAt) / 2), async () => {
      if (socket !== ws) return;
      try {
        const fresh = await options.getToken();
        if (socket !== ws) return;
        // A cached token (no later expiry) would change nothing for the hub: not sent, asked for again later.
        if ((tokenExpiry(fresh) ?? Infinity) > expiresAt) ws.send(JSON.stringify({ type: "auth", token: (token = fresh) }));
        scheduleRefresh(ws, token);
      } catch {
        // The hub closes with 4401 at expiry; the reconnect asks for a token again.
      }
    });
  };

  /** Drops the current socket, if any, without a reconnect. */
  const stop = (reason: string) => {
    clearTimers();
    const ws = socket;
    socket = undefined;
    if (ws) abandon(ws, 1000, reason);
  };

  /** Skips the wait for a scheduled retry (or the browser's return online); a socket in progress is left to finish. */
  const retryNow = () => {
    if (stopped || socket) return;
    clearTimers();
    open();
  };

  // A browser knows before any timer that the network is gone or back, or that the tab slept (a suspended laptop).
  const browser = options.browser ?? (globalThis as { window?: EventTarget; document?: BrowserSignals["document"] });
  let hiddenAt: number | undefined;
  const onOnline = () => {
    browserOffline = false;
    retryNow();
  };
  const onOffline = () => {
    browserOffline = true;
    // A live socket may still work (the signal is a guess); it is replaced only once it ends.
    if (!socket || !authenticated) {
      stop("the browser is offline");
      if (!stopped) setStatus("offline", "the browser is offline");
    }
  };
  const onVisibility = () => {
    if (!browser || !browser.document) return;
    if (browser.document.visibilityState === "hidden") hiddenAt = Date.now();
    else if (hiddenAt !== undefined && Date.now() - hiddenAt >= settings.pingIntervalMs) retryNow();
  };
  const listen = (add: boolean) => {
    if (!browser) return;
    const method = add ? "addEventListener" : "removeEventListener";
    browser.window?.[method]("online", onOnline);
    browser.window?.[method]("offline", onOffline);
    browser.document?.[method]("visibilitychange", onVisibility);
  };

  listen(true);
  open();
  return {
    presence,
    get status() {
      return state.status;
    },
    get state() {
      return state;
    },
    subscribe(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    on(event, listener) {
      const listeners = eventListeners.get(event) ?? new Set();
      eventListeners.set(event, listeners);
      const untyped = listener as (payload: unknown, envelope: EventEnvelope) => void;
      listeners.add(untyped);
      return () => listeners.delete(untyped);
    },
    setRooms(next) {
      checkRoomFilter(next);
      if (next?.join() === rooms?.join()) return;
      rooms = next && [...next];
      // Until the hub's answering snapshot, events follow the old filter (no gap detection) and the rooms newly
      // subscribed have no members here: a resume meanwhile must ask for a snapshot, not a replay.
      presence.detectGaps = false;
      needSnapshot = true;
      if (socket && authenticated) paceRooms(socket);
    },
    close() {
      stopped = true;
      listen(false);
      stop("client closed");
      setStatus("offline");
    },
    reconnect() {
      stop("client reconnects");
      listen(true); // after close(); adding a listener twice keeps one
      stopped = false;
      failures = 0;
      refusedTokens = 0;
      open();
    },
  };
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

