import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { guildId } from "./hub.js";

export interface StreamRequest {
  url: URL;
  headers: IncomingMessage["headers"];
  response: ServerResponse;
}

/**
 * A scripted edge for the SSE transport: records every GET /events with its headers and lets the test answer it
 * (headers, frames, an end event, an HTTP error). WebSocket upgrades are refused with 403, like a proxy that
 * blocks them.
 */
export class StreamHub {
  readonly requests: StreamRequest[] = [];
  upgradesRefused = 0;
  /** Answers each stream request; by default 200 with the ack's headers (the hub at the client's last id, or 1), left open. */
  onRequest: (request: StreamRequest) => void = (request) => this.accept(request, Number(request.headers["last-event-id"] ?? 1));

  private constructor(private readonly server: Server) {
    server.on("request", (req, res) => {
      const request = { url: new URL(req.url ?? "/", "http://stream-hub"), headers: req.headers, response: res };
      this.requests.push(request);
      this.onRequest(request);
    });
    server.on("upgrade", (_req, socket) => {
      this.upgradesRefused++;
      socket.on("error", () => undefined); // a client may reset the refused connection first
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
  }

  static async start(): Promise<StreamHub> {
    const hub = new StreamHub(createServer());
    await new Promise<void>((resolve) => hub.server.listen(0, "127.0.0.1", () => resolve()));
    return hub;
  }

  /** The socket URL a client is given; the SSE transport derives /events from it. */
  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws`;
  }

  last(): StreamRequest {
    return this.requests.at(-1)!;
  }

  accept(request: StreamRequest, seq: number): void {
    request.response.writeHead(200, { "Content-Type": "text/event-stream", "X-Guild-Id": guildId, "X-Seq": String(seq) });
    request.response.flushHeaders();
  }

  frame(event: string, data: unknown, id?: number, request = this.last()): void {
    request.response.write(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
