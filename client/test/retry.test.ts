import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import { connect, type RealtimeConnection } from "../connect.js";
import { jwt, NodeWebSocket, ScriptedHub, sleep } from "./support/hub.js";

let hub: ScriptedHub;
let client: RealtimeConnection | undefined;
afterEach(async () => {
  client?.close();
  await hub?.close();
});

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe("retry accounting", () => {
  it("retries a hub that accepts and drops at once with growing delays", async () => {
    hub = await ScriptedHub.start();
    hub.onAuth = (socket) => {
      hub.ack(socket);
      socket.close(1012, "service restart");
    };
    // random 1: each delay is its ceiling, 40 × 2^attempt ms.
    client = connect({ url: hub.url, WebSocket: NodeWebSocket, getToken: async () => jwt(600), backoff: { minMs: 40, maxMs: 5_000, factor: 2 }, random: () => 1 });
    await sleep(1_000);
    const connections = hub.connectedAt.length;
    expect(connections, "a handful of attempts in 1 s, not one per round trip").toBeLessThanOrEqual(7);
    expect(connections).toBeGreaterThanOrEqual(4);
    const between = gaps(hub.connectedAt);
    expect(between.at(-1)!).toBeGreaterThan(between[1]!);
  });

  it("resets the backoff once a connection has stayed live for minUptimeMs", async () => {
    hub = await ScriptedHub.start();
    hub.onAuth = (socket) => {
      hub.ack(socket);
      if (hub.sockets.length <= 3) socket.close(1012, "service restart");
    };
    client = connect({ url: hub.url, WebSocket: NodeWebSocket, getToken: async () => jwt(600), backoff: { minMs: 100, maxMs: 5_000, factor: 2 }, random: () => 1, minUptimeMs: 200 });
    await until(() => hub.sockets.length === 4 && client!.status === "live", "live on the fourth connection", 3_000);
    await sleep(300); // past minUptimeMs
    hub.last().terminate();
    const droppedAt = Date.now();
    await until(() => hub.sockets.length === 5, "a reconnect", 1_000);
    expect(hub.connectedAt[4]! - droppedAt, "immediate, not the 800 ms of a fourth failure").toBeLessThan(150);
  });

  it("backs off to the max delay after 4429 (too many)", async () => {
    hub = await ScriptedHub.start();
    hub.onAuth = (socket) => hub.ack(socket);
    client = connect({ url: hub.url, WebSocket: NodeWebSocket, getToken: async () => jwt(600), backoff: { minMs: 10, maxMs: 400, factor: 2 }, random: () => 1 });
    await until(() => client!.status === "live", "live");
    hub.last().close(4429, "too many sockets");
    const closedAt = Date.now();
    await until(() => hub.sockets.length === 2, "a reconnect after 4429", 2_000);
    expect(hub.connectedAt[1]! - closedAt).toBeGreaterThanOrEqual(350);
  });
});
