// `@spell-coven/realtime-client/sse`: everything the main entry has, with a `connect` that also speaks server-sent
// events. A separate entry keeps the main one within its size budget for apps that only use WebSockets.
import { connect as connectWith, type ConnectOptions, type RealtimeConnection, type WebSocketConstructor } from "./connect.js";
import { socketFactory } from "./sse.js";

export * from "./index.js";
export { SseSocket, eventsUrl, socketFactory, type Transport } from "./sse.js";

/** `connect` with `transport`: "websocket", "sse" (fetch streaming, the token in a header) or "auto" (the default here). */
export function connect(options: ConnectOptions): RealtimeConnection {
  const { transport = "auto", ...rest } = options;
  const native = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
  return connectWith({ ...rest, WebSocket: socketFactory(transport, native) });
}
