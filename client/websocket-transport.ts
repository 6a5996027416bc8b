import { parseJson } from "../protocol/json.js";
import type { AuthRequest, HubTransport, TransportHandlers } from "./transport.js";

/**
 * A handler property of WebSocketLike, checked bivariantly (as a method's parameter is): the `ws` package's and
 * the browser's handlers take richer event types than the fields the SDK reads, and must still fit.
 */
type Handler<E> = { handle(event: E): void }["handle"] | null;

/** The subset of the WebSocket API the client uses; the browser's, Node 22's and the `ws` package's all fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<unknown>;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;

/** The hub's own protocol: JSON messages both ways, "ping"/"pong" text frames for liveness. */
export class WebSocketTransport implements HubTransport {
  private readonly socket: WebSocketLike;

  constructor(url: string, handlers: TransportHandlers, WebSocket: WebSocketConstructor) {
    const socket = (this.socket = new WebSocket(url));
    socket.onopen = () => handlers.onOpen();
    socket.onmessage = (event) => {
      const data = String(event.data);
      if (data === "pong") handlers.onAlive();
      else handlers.onMessage(parseJson(data));
    };
    socket.onclose = (event) => handlers.onClose(event.code, event.reason);
    socket.onerror = () => undefined; // onclose follows
  }

  authenticate(auth: AuthRequest): void {
    this.send(JSON.stringify({ type: "auth", ...auth }));
  }

  setRooms(rooms: string[] | undefined): void {
    this.send(JSON.stringify({ type: "rooms", ...(rooms ? { rooms } : {}) }));
  }

  ping(): void {
    this.send("ping");
  }

  close(code: number, reason: string): void {
    const socket = this.socket;
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.onerror = () => undefined; // the `ws` package throws on an "error" without a listener
    try {
      socket.close(code, reason.slice(0, 100));
    } catch {
      // Already closed.
    }
  }

  private send(data: string): void {
    if (this.socket.readyState === OPEN) this.socket.send(data);
  }
}
