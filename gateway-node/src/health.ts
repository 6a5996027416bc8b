import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface HealthReport {
  healthy: boolean;
  body: Record<string, unknown>;
}

/** GET /healthz (200 when healthy, else 503 with the reason) and GET /metrics (Prometheus text). */
export async function startHealthServer(
  port: number,
  report: () => HealthReport,
  metrics: () => string,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    if (request.method === "GET" && request.url === "/healthz") {
      const { healthy, body } = report();
      response.writeHead(healthy ? 200 : 503, { "Content-Type": "application/json" });
      return void response.end(JSON.stringify({ ok: healthy, ...body }));
    }
    if (request.method === "GET" && request.url === "/metrics") {
      response.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
      return void response.end(metrics());
    }
    response.writeHead(404, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ error: "not_found" }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "0.0.0.0", resolve);
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
