export {
  connect,
  tokenExpiry,
  CONNECT_DEFAULTS,
  type BrowserSignals,
  type ConnectOptions,
  type ConnectionState,
  type ConnectionStatus,
  type EnvelopeOf,
  type EventListener,
  type RealtimeConnection,
} from "./connect.js";
export { SseSocket, eventsUrl, socketFactory } from "./sse.js";
export type { Transport, WebSocketConstructor, WebSocketLike } from "./transport.js";
export { PresenceStore, presenceDiff, type PresenceDiff, type PresenceSnapshot, type ApplyResult } from "./presence.js";
export type { EventEnvelope, Member, Room } from "./types.js";
