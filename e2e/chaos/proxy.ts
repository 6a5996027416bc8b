import { createConnection, createServer, type Server, type Socket } from "node:net";

export type ProxyMode = "open" | "reset" | "hang" | "drop-responses";

/**
 * A TCP proxy in front of the Worker for gateway-node's posts. `reset` refuses every connection (the hub is down),
 * `hang` accepts and never answers (a black hole: only timeouts notice), `drop-responses` forwards the request but
 * never returns the answer (the hub acted, the gateway cannot know: it must retry, the hub must dedupe), `open`
 * forwards. Switching away from
 * `open` cuts the connections in flight, so a pooled keep-alive socket cannot slip through.
 */
export class FaultProxy {
  private mode: ProxyMode = "open";
  private readonly live = new Set<Socket>();
  private readonly held = new Set<Socket>();
  private server: Server | undefined;

  constructor(
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  get current(): ProxyMode {
    return this.mode;
  }

  set(mode: ProxyMode): void {
    this.mode = mode;
    if (mode !== "open" && mode !== "drop-responses") for (const socket of this.live) socket.destroy();
    if (mode !== "hang") for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  async stop(): Promise<void> {
    this.set("reset");
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(socket: Socket): void {
    socket.on("error", () => undefined);
    if (this.mode === "reset") return void socket.resetAndDestroy();
    if (this.mode === "hang") {
      this.held.add(socket);
      socket.on("close", () => this.held.delete(socket));
      socket.resume(); // swallow the request
      return;
    }
    const upstream = createConnection({ host: "127.0.0.1", port: this.upstreamPort });
    const dropResponses = this.mode === "drop-responses";
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
    this.live.add(socket);
    this.live.add(upstream);
    socket.once("close", () => this.live.delete(socket));
    upstream.once("close", () => this.live.delete(upstream));
    socket.pipe(upstream);
    if (dropResponses) {
      this.held.add(socket);
      upstream.resume(); // the hub's answer goes nowhere
    } else upstream.pipe(socket);
  }
}
