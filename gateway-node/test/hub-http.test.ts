import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { hubHttpClient, MAX_HUB_RESPONSE_BYTES, type HubHttpClient } from "../src/hub-http.js";

/** A server on port 0 that records each request (its connection, headers, body) and answers with `respond`. */
async function hubServer(respond: (request: IncomingMessage, body: string, response: ServerResponse) => void) {
  const requests: Array<{ connection: number; headers: IncomingMessage["headers"]; body: string }> = [];
  const sockets: Socket[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push({ connection: sockets.indexOf(request.socket), headers: request.headers, body });
      respond(request, body, response);
    });
  });
  server.on("connection", (socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal/events`;
  const close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return { server, url, requests, connections: () => sockets.length, close };
}

const ok = (_request: IncomingMessage, _body: string, response: ServerResponse) => {
  response.writeHead(200, { "Content-Type": "application/json", "Retry-After": "3" });
  response.end(JSON.stringify({ ok: true, accepted: 1 }));
};

const post = (body: string, timeoutMs = 5_000) => ({
  method: "POST" as const,
  headers: { "content-type": "application/json", "X-Hub-Signature": "sha256=00" },
  body,
  signal: AbortSignal.timeout(timeoutMs),
});

let client: HubHttpClient | undefined;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  client?.close();
  client = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("the hubs' HTTP client", () => {
  it("posts the body and headers as given and reads the hub's status, headers and JSON", async () => {
    const hub = await hubServer(ok);
    cleanups.push(hub.close);
    client = hubHttpClient();
    const body = JSON.stringify({ events: [{ id: "s:1", payload: { username: "Zoë 🎲" } }] });
    const response = await client.fetch(hub.url, post(body));
    expect(response.ok).toBe(true);
    expect(response.status).toBe(200);
    expect(response.headers.get("retry-after")).toBe("3");
    expect(response.headers.get("X-Missing")).toBeNull();
    expect(await response.json()).toEqual({ ok: true, accepted: 1 });
    expect(hub.requests).toHaveLength(1);
    expect(hub.requests[0]!.body).toBe(body);
    expect(hub.requests[0]!.headers["x-hub-signature"]).toBe("sha256=00");
    expect(hub.requests[0]!.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
  });

  it("answers an error status as a response, not a failure", async () => {
    const hub = await hubServer((_request, _body, response) => {
      response.writeHead(503, { "Content-Type": "application/json" });
      response.end(JSON.stringify({ error: "internal" }));
    });
    cleanups.push(hub.close);
    client = hubHttpClient();
    const response = await client.fetch(new URL("lease", hub.url), post("{}"));
    expect(response.ok).toBe(false);
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('{"error":"internal"}');
    expect(hub.requests).toHaveLength(1);
  });

  it("sends one POST after another over one kept-alive connection", async () => {
    const hub = await hubServer(ok);
    cleanups.push(hub.close);
    client = hubHttpClient();
    for (let i = 0; i < 5; i++) expect((await client.fetch(hub.url, post(`{"n":${i}}`))).status).toBe(200);
    expect(hub.connections()).toBe(1);
  });

  it("connects again when the hub closed the idle connection", async () => {
    const hub = await hubServer(ok);
    cleanups.push(hub.close);
    hub.server.keepAliveTimeout = 50;
    client = hubHttpClient();
    expect((await client.fetch(hub.url, post("{}"))).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await client.fetch(hub.url, post("{}"))).status).toBe(200);
    expect(hub.connections()).toBe(2);
  });

  it("closes a connection idle longer than its idle time itself", async () => {
    const hub = await hubServer(ok);
    cleanups.push(hub.close);
    const closed: boolean[] = [];
    hub.server.on("connection", (socket: Socket) => socket.on("close", () => closed.push(true)));
    client = hubHttpClient({ idleConnectionMs: 50 });
    expect((await client.fetch(hub.url, post("{}"))).status).toBe(200);
    const deadline = Date.now() + 2_000;
    while (closed.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed, "the idle connection to be closed by the client").toHaveLength(1);
  });

  it("gives up on a hub that never answers when the request's signal times out", async () => {
    // Accepts the connection and never answers.
    const stall = createTcpServer(() => undefined);
    await new Promise<void>((resolve) => stall.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => stall.close(resolve)));
    const held: Socket[] = [];
    stall.on("connection", (socket) => held.push(socket));
    cleanups.push(() => held.forEach((socket) => socket.destroy()));
    client = hubHttpClient();
    const started = performance.now();
    const error = await client.fetch(`http://127.0.0.1:${(stall.address() as AddressInfo).port}/internal/events`, post("{}", 150)).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "TimeoutError" });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("refuses an answer larger than a hub's", async () => {
    const hub = await hubServer((_request, _body, response) => {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(`"${"x".repeat(MAX_HUB_RESPONSE_BYTES)}"`);
    });
    cleanups.push(hub.close);
    client = hubHttpClient();
    await expect(client.fetch(hub.url, post("{}"))).rejects.toThrow(/larger than/);
  });

  it("fails a request to a hub that refuses connections", async () => {
    const hub = await hubServer(ok);
    await hub.close();
    client = hubHttpClient();
    await expect(client.fetch(hub.url, post("{}"))).rejects.toThrow(/ECONNREFUSED/);
  });
});
