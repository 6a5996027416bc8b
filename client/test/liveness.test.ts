import { describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import type { ConnectionStatus } from "../connect.js";
import { jwt, NodeWebSocket, sleep } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

const sdk = sdkFixture();

const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 } };

describe("a dead connection", () => {
  it("is abandoned the moment a pong is missing, and replaced at once", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket);
    const statuses: Array<{ status: ConnectionStatus; at: number }> = [];
    const client = sdk.connect({
      ...fast,
      url: h.url,
      getToken: async () => jwt(600),
      pingIntervalMs: 100,
      pongTimeoutMs: 100,
      onStatus: (status) => statuses.push({ status, at: Date.now() }),
    });
    await until(() => client.status === "live" && h.received.includes("ping"), "live and a first ping");

    h.freeze(); // no pong, no close frame: only the client's own liveness check can notice
    const frozenAt = Date.now();
    const left = await until(() => statuses.find((s) => s.at >= frozenAt && s.status !== "live"), "the status to leave live after a missed pong", 1_000);
    expect(left.at - frozenAt, "one ping interval plus the pong timeout, at most").toBeLessThan(400);
    await until(() => h.auths().length === 2, "a reconnect while the frozen socket is still open", 1_000);
    expect(h.connectedAt[1]! - left.at, "at once").toBeLessThan(100);
    await until(() => client.status === "live", "live again");

    // The abandoned socket finally closing must not disturb the new connection.
    h.sockets[0]!.terminate();
    await sleep(150);
    expect(h.sockets).toHaveLength(2);
    expect(client.status).toBe("live");
    expect(statuses.map((s) => s.status)).toEqual(["connecting", "live", "resuming", "live"]);
  });
});

describe("connect timeout", () => {
  it("abandons a socket whose handshake never completes and retries with backoff", async () => {
    const s = await sdk.startStall();
    const details: string[] = [];
    const client = sdk.connect({ ...fast, url: s.url, getToken: async () => jwt(600), connectTimeoutMs: 100, onStatus: (_s, d) => d && details.push(d) });
    await until(() => s.connections.length >= 3, "three connection attempts to the stall server", 2_000);
    expect(client.status).toBe("connecting");
    expect(details).toContain("connect timeout");
  });

  it("abandons a socket that opens but never gets auth.ok", async () => {
    const h = await sdk.startHub();
    sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), connectTimeoutMs: 150 });
    await until(() => h.auths().length === 1, "the first auth");
    await until(() => h.auths().length === 2, "a second attempt after no auth.ok", 1_000);
    expect(h.sockets).toHaveLength(2);
  });

  it("does not time out a connection that authenticated", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), connectTimeoutMs: 100 });
    await until(() => client.status === "live", "live");
    await sleep(250);
    expect(h.sockets).toHaveLength(1);
    expect(client.status).toBe("live");
  });
});
