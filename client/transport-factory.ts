import { SseTransport } from "./sse-transport.js";
import type { Transport, TransportFactory } from "./transport.js";
import { WebSocketTransport, type WebSocketConstructor } from "./websocket-transport.js";

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
