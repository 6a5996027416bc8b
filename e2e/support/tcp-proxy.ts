import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { ServerFrameRewriter, UpgradeRequestFilter } from "./ws-frames.js";

export interface TcpProxyOptions {
  /** Where connections go: the Worker under `wrangler dev`. */
  upstreamPort: number;
  /** Rewrites the text of each WebSocket text message from the upstream (see ws-frames.ts). */
  rewriteFromUpstream?: (text: string) => string;
}

/** One client connection through the proxy. */
export interface ProxiedConnection {
  readonly id: number;
  /** forwarding, frozen (open, nothing passes), held (accepted, not yet forwarded) or closed. */
  readonly state: "forwarding" | "frozen" | "held" | "closed";
  /** Who ended it: the client, the upstream, or the proxy (cut). */
  readonly closedBy: "client" | "upstream" | "proxy" | undefined;
}

interface Link extends ProxiedConnection {
  state: ProxiedConnection["state"];
  closedBy: ProxiedConnection["closedBy"];
  client: Socket;
  upstream: Socket | undefined;
  /** What the client sent while held, for the upstream once released. */
  early: Buffer[];
}

/**
 * A TCP proxy on 127.0.0.1 between a client and the Worker that fails connections the ways networks do, on command:
 * `freeze()` stops forwarding both ways while keeping the connection open (a dead NAT mapping, a sleeping laptop:
 * only a liveness check notices), `cut()` destroys the connections (the client sees a close at once), and `hold()`
 * accepts new connections without answering them (a socket that never opens) until `release()` forwards them.
 */
export class TcpProxy {
  private readonly links: Link[] = [];
  private holding = false;
  private rewriters: ServerFrameRewriter[] = [];

  private constructor(
    private readonly server: Server,
    private readonly options: TcpProxyOptions,
  ) {}

  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, options);
    server.on("connection", (socket) => proxy.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Every connection accepted so far, oldest first. */
  get connections(): readonly ProxiedConnection[] {
    return this.links;
  }

  /** Text messages rewritten so far by `rewriteFromUpstream`. */
  get rewritten(): number {
    return this.rewriters.reduce((sum, rewriter) => sum + rewriter.rewritten, 0);
  }

  /**
   * Stops forwarding on every open connection, both ways, without closing any: bytes from either end are read
   * and dropped (a frozen link delivers nothing, ever), so an end that closes is still noticed. New connections
   * still forward.
   */
  freeze(): number {
    const open = this.links.filter((link) => link.state === "forwarding");
    for (const link of open) link.state = "frozen";
    return open.length;
  }

  /** Destroys every connection that is not already closed. */
  cut(): number {
    const open = this.links.filter((link) => link.state !== "closed");
    for (const link of open) this.end(link, "proxy");
    return open.length;
  }

  /** From now on, new connections are accepted and left unanswered. */
  hold(): void {
    this.holding = true;
  }

  /** Forwards the held connections, and new ones again. */
  release(): void {
    this.holding = false;
    for (const link of this.links) if (link.state === "held") this.forward(link);
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const link: Link = { id: this.links.length + 1, state: "held", closedBy: undefined, client, upstream: undefined, early: [] };
    this.links.push(link);
    client.on("error", () => this.end(link, "client"));
    client.on("close", () => this.end(link, "client"));
    const rewrite = this.options.rewriteFromUpstream;
    const request = rewrite ? new UpgradeRequestFilter() : undefined;
    client.on("data", (chunk: Buffer) => {
      const data = request ? request.feed(chunk) : chunk;
      if (link.state === "held") link.early.push(data);
      else if (link.state === "forwarding") link.upstream!.write(data);
    });
    if (!this.holding) this.forward(link);
  }

  private forward(link: Link): void {
    const upstream = createConnection({ host: "127.0.0.1", port: this.options.upstreamPort });
    link.upstream = upstream;
    link.state = "forwarding";
    upstream.on("error", () => this.end(link, "upstream"));
    upstream.on("close", () => this.end(link, "upstream"));
    const rewrite = this.options.rewriteFromUpstream;
    const response = rewrite ? new ServerFrameRewriter(rewrite) : undefined;
    if (response) this.rewriters.push(response);
    upstream.on("data", (chunk: Buffer) => {
      if (link.state === "forwarding") link.client.write(response ? response.feed(chunk) : chunk);
    });
    for (const data of link.early.splice(0)) upstream.write(data);
  }

  private end(link: Link, by: NonNullable<Link["closedBy"]>): void {
    if (link.state === "closed") return;
    link.state = "closed";
    link.closedBy = by;
    link.client.destroy();
    link.upstream?.destroy();
  }
}
