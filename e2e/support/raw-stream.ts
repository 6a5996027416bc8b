import { connect, type Socket } from "node:net";

/**
 * An event stream request over a bare TCP connection, so a test decides exactly how the client leaves: a reset
 * (RST), a clean close (FIN), or staying connected while no longer reading (its receive window fills up).
 */
export class RawStream {
  private received = "";
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (this.received += chunk));
    socket.on("error", () => undefined); // a reset we caused, or the server's
    socket.on("close", () => (this.closed = true));
  }

  /** Sends `GET path` with the given headers and resolves once the response head has arrived. */
  static async open(port: number, path: string, headers: Record<string, string>, method = "GET"): Promise<RawStream> {
    const socket = connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const stream = new RawStream(socket);
    const head = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""];
    socket.write(head.join("\r\n"));
    await stream.waitFor(() => stream.received.includes("\r\n\r\n"), "the response head");
    return stream;
  }

  get status(): number {
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(this.received)?.[1] ?? 0);
  }

  get text(): string {
    return this.received;
  }

  /** Waits until `text` has arrived in the body. */
  async waitForText(text: string, what: string, timeoutMs = 5_000): Promise<void> {
    await this.waitFor(() => this.received.includes(text), what, timeoutMs);
  }

  /** Leaves with a TCP reset, as a killed process or a dropped network path does. */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  /** Leaves with a clean close (FIN), as `curl` interrupted or a browser tab closed does. */
  close(): void {
    this.socket.destroy();
  }

  /** Stays connected but stops reading: the kernel's receive buffer fills, then the sender's. */
  stopReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  private async waitFor(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline || this.closed) {
        throw new Error(`${this.closed ? "connection closed" : `timed out after ${timeoutMs} ms`} waiting for ${what}; got ${JSON.stringify(this.received.slice(0, 500))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
