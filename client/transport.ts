// One interface for the ways a connection can reach the hub. The connection drives a HubTransport and hears
// back through TransportHandlers; it never knows which transport it has.
import { SseTransport } from "./sse-transport.js";
import { WebSocketTransport, type WebSocketConstructor } from "./websocket-transport.js";

/** The `transport` option: "websocket" (the default), "sse" (server-sent events) or "auto" (see connect()). */
export type Transport = "websocket" | "sse" | "auto";

/** The first message of a connection (`since`, `rooms`, `batch`), or a token refresh on a live one (token only). */
export interface AuthRequest {
  token: string;
  since?: number;
  rooms?: string[];
  batch?: true;
}

export interface TransportHandlers {
  /** Ready for the auth message. */
  onOpen(): void;
  /** A message from the hub, parsed from JSON (undefined for text that is not JSON); the connection validates it. */
  onMessage(message: unknown): void;
  /** The far end answered a ping (any message also proves it is alive). */
  onAlive(): void;
  /** The transport ended, with a socket close code; called once, and never after close(). */
  onClose(code: number, reason: string): void;
}

export interface HubTransport {
  authenticate(auth: AuthRequest): void;
  /** Replaces the room filter (undefined: every room); the hub answers with a snapshot. */
  setRooms(rooms: string[] | undefined): void;
  /** Asks the far end to prove it is alive: onAlive follows if it is. */
  ping(): void;
  /** Ends the transport from this side, without a call to onClose. */
  close(code: number, reason: string): void;
}

export type TransportFactory = (url: string, handlers: TransportHandlers) => HubTransport;

/** Why connect() cannot start without a WebSocket, and the ways out. */
export const NO_WEBSOCKET =
  "connect(): this runtime has no global WebSocket (Node before 22 has none). Run Node 22 or later, pass one " +
  '(connect({ WebSocket, … }) with `import { WebSocket } from "ws"`), or use transport: "sse"';

/**
 * The transports of a connection's life. "auto" uses WebSockets until one closes without ever opening (a network
 * that blocks them, a proxy that refuses upgrades), then server-sent events from then on.
 */
export function transportFactory(transport: Transport, WebSocket: WebSocketConstructor | undefined): TransportFactory {
  const sse: TransportFactory = (url, handlers) => new SseTransport(url, handlers);
  if (transport === "sse" || (transport === "auto" && !WebSocket)) return sse;
  if (typeof WebSocket !== "function") throw new TypeError(NO_WEBSOCKET);
  if (transport === "websocket") return (url, handlers) => new WebSocketTransport(url, handlers, WebSocket);
  let blocked = false;
  return (url, handlers) => {
    if (blocked) return sse(url, handlers);
    let opened = false;
    return new WebSocketTransport(
      url,
      {
        ...handlers,
        onOpen: () => ((opened = true), handlers.onOpen()),
        onClose: (code, reason) => ((blocked ||= !opened), handlers.onClose(code, reason)),
      },
      WebSocket,
    );
  };
}
