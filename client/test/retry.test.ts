import { describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import type { ConnectionStatus } from "../connect.js";
import { jwt, NodeWebSocket, sleep } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

const sdk = sdkFixture();

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe("retry accounting", () => {
  it("retries a hub that accepts and drops at once with growing delays", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => {
      hub.ack(socket);
      socket.close(1012, "service restart");
    };
    // random 1: each delay is its ceiling, 40 × 2^attempt ms.
    sdk.connect({ url: hub.url, WebSocket: NodeWebSocket, getToken: async () => jwt(600), backoff: { minMs: 40, maxMs: 5_000, factor: 2 }, random: () => 1 });
    await sleep(1_000);
    const connections = hub.connectedAt.length;
    expect(connections, "a handful of attempts in 1 s, not one per round trip").toBeLessThanOrEqual(7);
    expect(connections).toBeGreaterThanOrEqual(4);
    const between = gaps(hub.connectedAt);
    expect(between.at(-1)!).toBeGreaterThan(between[1]!);
  });

  it("resets the backoff once a connection has stayed live for minUptimeMs", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => {
      hub.ack(socket);
      if (hub.sockets.length <= 3) socket.close(1012, "service restart");
    };
    const client = sdk.connect({ url: hub.url, WebSocket: NodeWebSocket, getToken: async () => jwt(600), backoff: { minMs: 100, maxMs: 5_000, factor: 2 }, random: () => 1, minUptimeMs: 200 });
    await until(() => hub.sockets.length === 4 && client.status === "live", "live on the fourth connection", 3_000);
    await sleep(300); // past minUptimeMs
    hub.last().terminate();
    const droppedAt = Date.now();
    await until(() => hub.sockets.length === 5, "a reconnect", 1_000);
    expect(hub.connectedAt[4]! - droppedAt, "immediate, not the 800 ms of a fourth failure").toBeLessThan(150);
  });

  it("backs off to the max delay after 4429 (too many)", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => hub.ack(socket);
    const client = sdk.connect({ url: hub.url, WebSocket: NodeWebSocket, getToken: async () => jwt(600), backoff: { minMs: 10, maxMs: 400, factor: 2 }, random: () => 1 });
    await until(() => client.status === "live", "live");
    hub.last().close(4429, "too many sockets");
    const closedAt = Date.now();
    await until(() => hub.sockets.length === 2, "a reconnect after 4429", 2_000);
    expect(hub.connectedAt[1]! - closedAt).toBeGreaterThanOrEqual(350);
  });
});

describe("a refused token", () => {
  it("asks for one fresh token after 4401, then stops as unauthorized until reconnect()", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => socket.close(4401, "unauthorized");
    let issued = 0;
    const statuses: ConnectionStatus[] = [];
    const client = sdk.connect({
      url: hub.url,
      WebSocket: NodeWebSocket,
      backoff: { minMs: 10, maxMs: 50, factor: 2 },
      getToken: async () => jwt(600, `user-${++issued}`),
      onStatus: (s) => statuses.push(s),
    });
    await until(() => client.status === "unauthorized" || hub.sockets.length > 2, "unauthorized or a third attempt", 2_000);
    await sleep(200);
    expect(hub.sockets, "one retry with a fresh token, then no more").toHaveLength(2);
    expect(issued).toBe(2);
    expect(client.status).toBe("unauthorized");
    expect(statuses.at(-1)).toBe("unauthorized");

    hub.onAuth = (socket) => hub.ack(socket);
    client.reconnect();
    await until(() => client.status === "live", "live after reconnect()");
    expect(issued).toBe(3);
  });

  it("keeps going when each refused token is followed by an accepted fresh one", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => {
      hub.ack(socket);
      if (hub.sockets.length <= 2) setTimeout(() => socket.close(4401, "token expired"), 20);
    };
    const client = sdk.connect({ url: hub.url, WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 }, getToken: async () => jwt(600) });
    await until(() => hub.sockets.length === 3 && client.status === "live", "live on the third connection", 2_000);
  });

  it("stops as unauthorized when no fresh token can be fetched after 4401", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => socket.close(4401, "token expired");
    let calls = 0;
    const getToken = async () => {
      if (++calls > 1) throw new Error("signed out");
      return jwt(600);
    };
    const client = sdk.connect({ url: hub.url, WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 }, getToken });
    await until(() => client.status === "unauthorized", "unauthorized");
    await sleep(100);
    expect(calls).toBe(2);
    expect(hub.auths()).toHaveLength(1);
  });
});
