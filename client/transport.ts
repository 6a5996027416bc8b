// One interface for the ways a connection can reach the hub. The connection drives a HubTransport and hears
// back through TransportHandlers; it never knows which transport it has.

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
  /**
   * Before a transport opens another hub connection on a live one (a restarted stream): spends one of the hub's
   * first auths and returns 0, or returns the ms until one is available (none spent; ask again then).
   */
  takeFirstAuth(): number;
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
