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
  type WebSocketConstructor,
  type WebSocketLike,
} from "./connect.js";
export { eventsUrl } from "./sse-transport.js";
export type { Transport } from "./transport.js";
export { PresenceStore, presenceDiff, mediaOf, type PresenceDiff, type PresenceSnapshot, type ApplyResult } from "./presence.js";
export type { EventEnvelope, GuildStatus, Member, Room, VoiceMedia } from "./types.js";
