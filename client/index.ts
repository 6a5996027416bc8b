export { connect, tokenExpiry, CONNECT_DEFAULTS, type ConnectOptions, type ConnectionStatus, type RealtimeConnection, type WebSocketLike } from "./connect.js";
export { PresenceStore, type PresenceSnapshot, type ApplyResult } from "./presence.js";
export { createRealtimeApi, RealtimeApiError, type RealtimeApi } from "./rest.js";
