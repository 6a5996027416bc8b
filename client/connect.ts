// Runtime imports from ../protocol only from its zod-free modules: the browser bundle gets zod/mini, not zod.
import { backoffDelay, type BackoffPolicy } from "../protocol/backoff.js";
import type { EventEnvelope } from "../protocol/index.js";
import { parseJson } from "../protocol/json.js";
import { PresenceStore } from "./presence.js";
import { CloseCode } from "../protocol/codes.js";
import { AnyEventEnvelope, knownEvents, ServerMessage } from "./schemas.js";
import type { Transport } from "./sse.js";

/**
 * - `connecting` / `resuming`: working on a connection (resuming once a snapshot has arrived);
 * - `live`: authenticated (auth.ok) and receiving events;
 * - `offline`: closed by the app (`close()`);
 * - `unauthorized`: the hub refused a token and then a freshly fetched one (close 4401 twice in a row), or no
 *   fresh token could be fetched after a 4401: the user must sign in again, then the app calls `reconnect()`;
 * - `forbidden`: the hub closed 4403, this account may not see this guild; final until `reconnect()`.
 */
export type ConnectionStatus = "connecting" | "live" | "resuming" | "offline" | "unauthorized" | "forbidden";

/** The subset of the WebSocket API the client uses; browsers' and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ConnectOptions {
  /** wss://<edge>/ws (add ?guildId= in multi-guild deployments). */
  url: string;
  /** Returns a valid app JWT; called on every (re)connect and before the current token expires. */
  getToken: () => Promise<string>;
  /** Receive voice events only for these rooms (room events always arrive). */
  rooms?: string[];
  onEvent?: (event: EventEnvelope) => void;
  onStatus?: (status: ConnectionStatus, detail?: string) => void;
  WebSocket?: WebSocketConstructor;
  /** "sse" and "auto" (SSE once a WebSocket fails without opening) need `connect` from the `/sse` entry. */
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
  close(): void;
  /** Starts over at once with a fresh token: after `unauthorized` (the user signed in again), `forbidden` or `close()`. */
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

/** setTimeout's largest delay (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Connects to the hub and keeps a live presence store: first-message auth, resume from the last seq after any
 * drop (or a fresh snapshot when the hub says so), backoff with full jitter, token refresh before expiry, a
 * connect timeout and a ping/pong liveness check that abandons a dead socket at once.
 */
export function connect(options: ConnectOptions): RealtimeConnection {
  const settings = { ...CONNECT_DEFAULTS, ...options };
  if ((options.transport ?? "websocket") !== "websocket") {
    throw new Error(`transport "${options.transport}" needs connect from "@spell-coven/realtime-client/sse"`);
  }
  const Socket = options.WebSocket ?? (globalThis as unknown as { WebSocket: WebSocketConstructor }).WebSocket;
  const random = options.random ?? Math.random;
  const presence = new PresenceStore(options.rooms === undefined);
  let status: ConnectionStatus = "offline";
  let socket: WebSocketLike | undefined;
  /** Connections in a row that ended before staying live for minUptimeMs. */
  let failures = 0;
  /** 4401 closes since the last auth.ok. */
  let refusedTokens = 0;
  let stopped = false;
  /** Set when the hub sent a known event this client could not read: resuming would replay it, a snapshot heals. */
  let needSnapshot = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const setStatus = (next: ConnectionStatus, detail?: string) => {
    if (next === status && detail === undefined) return;
    status = next;
    options.onStatus?.(next, detail);
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

  /** Decides what follows a connection's end: retry (with backoff) or stop. */
  const afterEnd = (code: number | undefined, reason: string, liveSince: number | undefined) => {
    if (stopped) return setStatus("offline");
    if (liveSince !== undefined && Date.now() - liveSince >= settings.minUptimeMs) failures = 0;
    const detail = code === undefined ? reason : `closed ${code}${reason ? `: ${reason}` : ""}`;
    if (code === CloseCode.guildNotAllowed) {
      stopped = true;
      return setStatus("forbidden", "this account may not see this guild");
    }
    if (code === CloseCode.unauthorized && ++refusedTokens >= 2) {
      stopped = true;
      return setStatus("unauthorized", "the hub refused a fresh token: sign in again, then call reconnect()");
    }
    const delay =
      code === CloseCode.tooMany
        ? // Told to back off: the longest delay, with jitter so sockets refused together do not return together.
          settings.backoff.maxMs * (0.5 + random() / 2)
        : failures === 0
          ? 0
          : backoffDelay(failures, settings.backoff, random);
    failures++;
    setStatus(presence.hasSnapshot ? "resuming" : "connecting", detail);
    later(delay, open);
  };

  const open = () => {
    if (stopped) return;
    setStatus(presence.hasSnapshot ? "resuming" : "connecting");
    const ws = new Socket(options.url);
    socket = ws;
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
        if (refusedTokens > 0) {
          // The hub refused the last token and no fresh one can be had: the user has to sign in again.
          socket = undefined;
          clearTimers();
          abandon(ws, 4000, "no token");
          stopped = true;
          return setStatus("unauthorized", `no fresh token after 4401: ${error instanceof Error ? error.message : String(error)}`);
        }
        return end(undefined, `no token: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (socket !== ws) return;
      const since = presence.hasSnapshot && !needSnapshot ? { since: presence.seq } : {};
      ws.send(JSON.stringify({ type: "auth", token, ...since, ...(options.rooms ? { rooms: options.rooms } : {}) }));
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
      const parsed = ServerMessage.safeParse(json);
      if (!parsed.success) return onUnknown(json);
      const message = parsed.data;
      if (message.type === "ack") {
        liveSince ??= Date.now();
        refusedTokens = 0;
        setStatus("live");
      } else if (message.type === "snapshot") {
        needSnapshot = false;
        presence.applySnapshot(message);
      } else if (presence.applyEvent(message) === "gap") {
        // Missed something: reconnect and let the hub replay from our seq (or send a snapshot).
        end(undefined, "sequence gap");
      } else {
        options.onEvent?.(message);
      }
    };

    /** A message ServerMessage does not describe: a newer hub's event (apply its seq), or something malformed. */
    const onUnknown = (json: unknown) => {
      const envelope = AnyEventEnvelope.safeParse(json);
      if (!envelope.success) return options.onStatus?.(status, "ignored a malformed message from the hub");
      if (knownEvents.has(envelope.data.event)) {
        // A known event that does not validate cannot be applied; skipping it would leave the rooms wrong.
        needSnapshot = true;
        return end(undefined, `could not read ${envelope.data.event} (seq ${envelope.data.seq}): taking a fresh snapshot`);
      }
      if (presence.skip(envelope.data.seq) === "gap") end(undefined, "sequence gap");
    };

    ws.onclose = (event) => end(event.code, event.reason);
    ws.onerror = () => undefined; // onclose follows and decides
  };

  /** Sends a fresh token on the open socket shortly before the current one expires. */
  const scheduleRefresh = (ws: WebSocketLike, token: string) => {
    const expiresAt = tokenExpiry(token);
    if (expiresAt === undefined) return;
    at(Math.max(Date.now() + 1_000, expiresAt - settings.refreshBeforeExpiryMs), async () => {
      if (socket !== ws) return;
      try {
        const fresh = await options.getToken();
        if (socket !== ws) return;
        ws.send(JSON.stringify({ type: "auth", token: fresh }));
        scheduleRefresh(ws, fresh);
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

  open();
  return {
    presence,
    get status() {
      return status;
    },
    close() {
      stopped = true;
      stop("client closed");
      setStatus("offline");
    },
    reconnect() {
      stop("client reconnects");
      stopped = false;
      failures = 0;
      refusedTokens = 0;
      open();
    },
  };
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

