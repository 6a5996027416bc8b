import { WebSocket } from "ws";

export interface ProbeMessage {
  op: number;
  d: unknown;
  s: number | null;
  t: string | null;
}

/**
 * A bare gateway client that records every frame and the close code, and does nothing on its own (no
 * heartbeats, no reconnects): tests drive it frame by frame to pin down protocol edges.
 */
export class GatewayProbe {
  readonly messages: ProbeMessage[] = [];
  closeCode: number | undefined;
  opened = false;
  handshakeError: Error | undefined;
  readonly socket: WebSocket;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.on("open", () => (this.opened = true));
    this.socket.on("message", (data) => this.messages.push(JSON.parse(String(data)) as ProbeMessage));
    this.socket.on("close", (code) => (this.closeCode = code));
    this.socket.on("error", (error) => (this.handshakeError = error));
  }

  send(payload: unknown): void {
    this.socket.send(typeof payload === "string" ? payload : JSON.stringify(payload));
  }

  identify(token: string, intents: number, extra: Record<string, unknown> = {}): void {
    this.send({ op: 2, d: { token, intents, properties: { os: "linux", browser: "probe", device: "probe" }, ...extra } });
  }

  resume(token: string, sessionId: string, seq: number): void {
    this.send({ op: 6, d: { token, session_id: sessionId, seq } });
  }

  dispatches(event?: string): ProbeMessage[] {
    return this.messages.filter((m) => m.op === 0 && (event === undefined || m.t === event));
  }

  find(op: number): ProbeMessage | undefined {
    return this.messages.find((m) => m.op === op);
  }

  /** Drops the TCP connection without a close frame, as a network failure would. */
  drop(): void {
    this.socket.terminate();
  }
}
