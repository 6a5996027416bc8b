import type { WebSocketLike } from "../../../client/connect.js";
import { edgeFetch } from "./edge.js";

/** The SDK's WebSocketLike over a socket to the Worker in this isolate; `cut()` drops it like a network would. */
export class EdgeSocket implements WebSocketLike {
  static readonly live = new Set<EdgeSocket>();
  /** Sockets constructed so far: how many connections the SDK opened. */
  static opened = 0;
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** What the SDK sent on this socket, in order. */
  readonly sent: string[] = [];
  private ws: WebSocket | undefined;

  constructor(url: string) {
    EdgeSocket.live.add(this);
    EdgeSocket.opened++;
    void edgeFetch(new URL(url).pathname + new URL(url).search, { headers: { Upgrade: "websocket" } }).then((response) => {
      const ws = response.webSocket;
      if (!ws) return this.closed(1006, `upgrade refused: ${response.status}`);
      ws.accept();
      if (this.readyState === 3) return ws.close(1000, "abandoned before open");
      this.ws = ws;
      this.readyState = 1;
      ws.addEventListener("message", (event) => this.readyState === 1 && this.onmessage?.({ data: event.data }));
      ws.addEventListener("close", (event) => this.closed(event.code, event.reason));
      this.onopen?.({});
    });
  }

  send(data: string): void {
    this.sent.push(data);
    if (this.readyState === 1) this.ws!.send(data);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    EdgeSocket.live.delete(this);
    this.ws?.close(code, reason);
  }

  /** The network drops: the hub sees a close, the client a 1006 without a close frame. */
  cut(): void {
    if (this.readyState !== 1) return;
    this.ws!.close(1000, "cut");
    this.closed(1006, "");
  }

  private closed(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    EdgeSocket.live.delete(this);
    this.onclose?.({ code, reason });
  }
}
