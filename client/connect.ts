import type { BackoffPolicy } from "../protocol/backoff.js";
import { Connection, type ConnectionState, type ConnectionStatus } from "./connection.js";
import { callListener } from "./listeners.js";
import { PresenceStore } from "./presence.js";
import { checkRoomFilter, RoomFilterBook } from "./room-filter.js";
import type { Transport } from "./transport.js";
import { transportFactory } from "./transport-factory.js";
import type { EventEnvelope } from "./types.js";
import type { WebSocketConstructor } from "./websocket-transport.js";

export { tokenExpiry, type ConnectionState, type ConnectionStatus } from "./connection.js";
export type { WebSocketConstructor, WebSocketLike } from "./websocket-transport.js";

/** The events of an EventEnvelope, by name: `on(name, …)` listeners get these. */
export type EnvelopeOf<E extends EventEnvelope["event"]> = Extract<EventEnvelope, { event: E }>;
export type EventListener<E extends EventEnvelope["event"]> = (payload: EnvelopeOf<E>["payload"], envelope: EnvelopeOf<E>) => void;

/** What the client listens to in a browser: the window's online/offline and the document's visibility. */
export interface BrowserSignals {
  window?: EventTarget;
  document?: EventTarget & { readonly visibilityState: string };
}

export interface ConnectOptions {
  /** wss://<edge>/ws (add ?guildId= in multi-guild deployments). */
  url: string;
  /** Returns a valid app JWT; called on every (re)connect and before the current token expires. */
  getToken: () => Promise<string>;
  /** Receive voice events only for these rooms (at most 50 snowflakes; room events always arrive); change with `setRooms()`. */
  rooms?: string[] | undefined;
  onEvent?: ((event: EventEnvelope) => void) | undefined;
  onStatus?: ((status: ConnectionStatus, detail?: string) => void) | undefined;
  /** Give up (status `failed`) after this many connections in a row failed; unbounded by default. */
  maxRetries?: number | undefined;
  /** Defaults to the global `window` and `document` where they exist; `false` listens to neither. */
  browser?: BrowserSignals | false | undefined;
  /** Defaults to the global WebSocket (browsers, Node 22+); in older runtimes pass one, e.g. the `ws` package's. */
  WebSocket?: WebSocketConstructor | undefined;
  /**
   * "websocket" (the default), "sse" (server-sent events over fetch streaming, the token in a header) or "auto"
   * (WebSockets until one closes without ever opening, then SSE for the rest of this connection's life).
   */
  transport?: Transport | undefined;
  backoff?: BackoffPolicy | undefined;
  /** Send a fresh token this long before the current one expires. */
  refreshBeforeExpiryMs?: number | undefined;
  pingIntervalMs?: number | undefined;
  /** A connection that has not answered a ping within this long is treated as dead. */
  pongTimeoutMs?: number | undefined;
  /** An attempt that is not live (authenticated, with the snapshot or replay applied) within this long is abandoned and retried. */
  connectTimeoutMs?: number | undefined;
  /** A connection counts as a success, resetting the backoff, only once it has stayed live this long. */
  minUptimeMs?: number | undefined;
  random?: (() => number) | undefined;
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

/** An option's value, or its default when the app left it out (or passed undefined). */
const or = <T>(value: T | undefined, fallback: T): T => (value === undefined ? fallback : value);

/**
 * Connects to the hub and keeps a live presence store: first-message auth, resume from the last seq after any
 * drop (or a fresh snapshot when the hub says so), backoff with full jitter, token refresh before expiry, a
 * connect timeout and a ping/pong liveness check that abandons a dead connection at once.
 */
export function connect(options: ConnectOptions): RealtimeConnection {
  checkRoomFilter(options.rooms);
  const WebSocket = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
  const openTransport = transportFactory(options.transport ?? "websocket", WebSocket);
  const filter = new RoomFilterBook(options.rooms);
  const presence = new PresenceStore(options.rooms === undefined);
  const stateListeners = new Set<(state: ConnectionState) => void>();
  const eventListeners = new Map<string, Set<(payload: unknown, envelope: EventEnvelope) => void>>();
  const connection = new Connection(
    {
      url: options.url,
      getToken: options.getToken,
      openTransport,
      maxRetries: options.maxRetries,
      backoff: or(options.backoff, CONNECT_DEFAULTS.backoff),
      refreshBeforeExpiryMs: or(options.refreshBeforeExpiryMs, CONNECT_DEFAULTS.refreshBeforeExpiryMs),
      pingIntervalMs: or(options.pingIntervalMs, CONNECT_DEFAULTS.pingIntervalMs),
      pongTimeoutMs: or(options.pongTimeoutMs, CONNECT_DEFAULTS.pongTimeoutMs),
      connectTimeoutMs: or(options.connectTimeoutMs, CONNECT_DEFAULTS.connectTimeoutMs),
      minUptimeMs: or(options.minUptimeMs, CONNECT_DEFAULTS.minUptimeMs),
      random: options.random ?? Math.random,
    },
    presence,
    filter,
    {
      state(state, told) {
        if (told) callListener(() => options.onStatus?.(state.status, state.detail));
        for (const listener of stateListeners) callListener(() => listener(state));
      },
      event(envelope) {
        callListener(() => options.onEvent?.(envelope));
        for (const name of [envelope.event, "*"]) {
          for (const listener of eventListeners.get(name) ?? []) callListener(() => listener(envelope.payload, envelope));
        }
      },
    },
  );

  // A browser knows before any timer that the network is gone or back, or that the tab slept (a suspended laptop).
  const browser = options.browser ?? (globalThis as { window?: EventTarget; document?: BrowserSignals["document"] });
  let hiddenAt: number | undefined;
  const onOnline = () => connection.setBrowserOffline(false);
  const onOffline = () => connection.setBrowserOffline(true);
  const onVisibility = () => {
    if (!browser || !browser.document) return;
    if (browser.document.visibilityState === "hidden") hiddenAt = Date.now();
    else if (hiddenAt !== undefined && Date.now() - hiddenAt >= or(options.pingIntervalMs, CONNECT_DEFAULTS.pingIntervalMs)) connection.retryNow();
  };
  const listen = (add: boolean) => {
    if (!browser) return;
    const method = add ? "addEventListener" : "removeEventListener";
    browser.window?.[method]("online", onOnline);
    browser.window?.[method]("offline", onOffline);
    browser.document?.[method]("visibilitychange", onVisibility);
  };

  listen(true);
  connection.open();
  return {
    presence,
    get status() {
      return connection.state.status;
    },
    get state() {
      return connection.state;
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
      if (filter.want(next)) connection.filterChanged();
    },
    close() {
      listen(false);
      connection.close();
    },
    reconnect() {
      listen(true); // after close(); adding a listener twice keeps one
      connection.resetRetries();
      connection.open();
    },
  };
}
