import { EventEmitter } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createRealtimeApi } from "../rest.js";

const created = { channelId: "110000000000000001", name: "Friday", guildId: "100000000000000001" };

/**
 * A real HTTP server whose answers are scripted per request: "stall" sends the headers and half a body, then
 * nothing; "cut" sends the same and drops the connection.
 */
async function serve(...answers: Array<"stall" | "cut" | unknown>) {
  const keys: Array<string | undefined> = [];
  const open: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    keys.push(req.headers["x-idempotency-key"] as string | undefined);
    const answer = answers.shift();
    const partial = answer === "stall" || answer === "cut";
    res.writeHead(partial ? 200 : 201, { "Content-Type": "application/json", ...(partial ? { "Content-Length": "200" } : {}) });
    if (partial) {
      res.write('{"channelId":"1100000');
      if (answer === "cut") setTimeout(() => res.socket?.destroy(), 20);
      else open.push(res);
    } else res.end(JSON.stringify(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, keys, close };
}

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

const quick = { getToken: async () => "token", backoff: { minMs: 1, maxMs: 5, factor: 2 } };

// The documented contract: timeoutMs covers "the body included", "a timeout rejects with a TimeoutError", and an
// abort rejects "with the signal's reason". A body cut short by either used to be read as no body at all, which
// then failed validation: a ZodError, never retried.
describe("a response body that stalls", () => {
  it("rejects with a TimeoutError at timeoutMs", async () => {
    const server = await serve("stall");
    stop = server.close;
    const api = createRealtimeApi({ ...quick, baseUrl: server.baseUrl, timeoutMs: 100, attempts: 1 });
    await expect(api.createRoom({ name: "Friday" })).rejects.toMatchObject({ name: "TimeoutError" });
  });

  it("is retried like a timeout before the headers, with the same idempotency key", async () => {
    const server = await serve("stall", created);
    stop = server.close;
    const api = createRealtimeApi({ ...quick, baseUrl: server.baseUrl, timeoutMs: 100, attempts: 2 });
    await expect(api.createRoom({ name: "Friday" })).resolves.toEqual(created);
    expect(server.keys).toHaveLength(2);
    expect(server.keys[1]).toBe(server.keys[0]);
  });

  it("is retried when the connection drops in the middle of the body", async () => {
    const server = await serve("cut", created);
    stop = server.close;
    const api = createRealtimeApi({ ...quick, baseUrl: server.baseUrl, timeoutMs: 10_000, attempts: 2 });
    await expect(api.createRoom({ name: "Friday" })).resolves.toEqual(created);
    expect(server.keys).toEqual([server.keys[0], server.keys[0]]);
  });

  it("rejects with the signal's reason when the caller aborts while the body is read", async () => {
    const server = await serve("stall");
    stop = server.close;
    const api = createRealtimeApi({ ...quick, baseUrl: server.baseUrl, timeoutMs: 10_000 });
    const controller = new AbortController();
    const reason = new Error("the user left the page");
    const call = api.createRoom({ name: "Friday" }, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50)); // the headers have arrived: the body is being read
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(server.keys).toHaveLength(1);
  });
});

describe("an app-wide AbortSignal", () => {
  it("keeps no listener from the waits between tries once the call has settled", async () => {
    let calls = 0;
    const fetch = (async () =>
      ++calls < 3 ? new Response(JSON.stringify({ error: "internal", message: "busy" }), { status: 503 }) : new Response(JSON.stringify(created), { status: 201 })) as typeof globalThis.fetch;
    const api = createRealtimeApi({ ...quick, baseUrl: "https://realtime.test", fetch });
    const appWide = new AbortController();
    for (let i = 0; i < 5; i++) {
      calls = 0;
      await expect(api.createRoom({ name: "Friday" }, { signal: appWide.signal })).resolves.toEqual(created);
    }
    expect(EventEmitter.getEventListeners(appWide.signal, "abort")).toHaveLength(0);
  });
});
