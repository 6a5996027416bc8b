import { build } from "esbuild";
import { createServer, request as forward, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

const PAGE = `<!doctype html><meta charset="utf-8"><title>presence</title>
<p id="status">offline</p><ul id="rooms"></ul><script type="module" src="/page.js"></script>`;

export interface NoWebSocketProxy {
  url: string;
  /** WebSocket upgrades answered 403. */
  upgradesRefused: number;
  /** Paths forwarded to the Worker, in order. */
  forwarded: string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of the Worker that refuses every WebSocket upgrade (403, then closes), as some corporate
 * proxies do, and serves the presence page itself so the page's requests to the Worker are same-origin.
 * Responses are piped as they arrive, so a server-sent events stream passes through unbuffered.
 */
export async function startNoWebSocketProxy(workerUrl: string): Promise<NoWebSocketProxy> {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL("./presence-page.ts", import.meta.url))],
    bundle: true,
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  const script = bundle.outputFiles[0]!.text;
  const target = new URL(workerUrl);
  const state = { upgradesRefused: 0, forwarded: [] as string[] };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    if (path === "/") return void res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(PAGE);
    if (path === "/page.js") return void res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" }).end(script);
    state.forwarded.push(path);
    const upstream = forward(
      { host: target.hostname, port: target.port, path, method: req.method, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (_req, socket) => {
    state.upgradesRefused++;
    socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get upgradesRefused() {
      return state.upgradesRefused;
    },
    forwarded: state.forwarded,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
