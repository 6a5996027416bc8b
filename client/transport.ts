/** What a transport gives the connection: a socket-shaped object, so connect() never knows which one it drives. */

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

/** "websocket", "sse" (server-sent events over fetch streaming) or "auto" (WebSockets, SSE once they are blocked). */
export type Transport = "websocket" | "sse" | "auto";
