import { describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import type { ConnectionState, RealtimeConnection } from "../connect.js";
import { jwt, NodeWebSocket, sleep } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

const sdk = sdkFixture();

const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 }, browser: false as const };

describe("connection.state", () => {
  it("tells subscribers each state: connecting, live, resuming with the reason and when it retries, live again", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600) });
    const states: ConnectionState[] = [client.state];
    const unsubscribe = client.subscribe((state) => states.push(state));
    await until(() => client.state.status === "live", "live");
    h.last().close(1012, "restart");
    await until(() => h.sockets.length === 2 && client.state.status === "live", "live again");
    unsubscribe();
    expect(states.map((s) => s.status)).toEqual(["connecting", "live", "resuming", "resuming", "live"]);
    const retrying = states[2]!;
    expect(retrying).toMatchObject({ status: "resuming", detail: "closed 1012: restart", attempt: 1 });
    expect(retrying.retryAt).toEqual(expect.any(Number));
    expect(states[3]).toMatchObject({ status: "resuming", detail: "closed 1012: restart", retryAt: undefined });
    expect(client.state).toBe(states.at(-1));
    h.last().close(1012, "restart");
    await until(() => h.sockets.length === 3, "a third connection");
    expect(states).toHaveLength(5); // unsubscribed
  });

  it("fails for good after maxRetries connections in a row failed, until reconnect()", async () => {
    const h = await sdk.startHub();
    h.wss.on("connection", (socket) => socket.close(1011, "broken"));
    const statuses: string[] = [];
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), maxRetries: 2, onStatus: (s) => statuses.push(s) });
    await until(() => client.state.status === "failed", "failed");
    expect(client.state).toMatchObject({ reason: "retries", detail: "gave up after 3 tries (closed 1011: broken)" });
    await sleep(100);
    expect(h.sockets).toHaveLength(3);
    expect(statuses.at(-1)).toBe("failed");
    client.reconnect();
    expect(client.state.status).toBe("connecting");
    await until(() => client.state.status === "failed", "failed again");
    expect(h.sockets, "three more tries after reconnect()").toHaveLength(6);
  });

  it("fails with reason forbidden on 4403", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => socket.close(4403, "guild not allowed");
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600) });
    await until(() => client.state.status === "failed", "failed");
    expect(client.state.reason).toBe("forbidden");
    expect(client.status).toBe("failed");
  });

  it("is offline after close(), and tells subscribers", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600) });
    await until(() => client.state.status === "live", "live");
    let last: ConnectionState | undefined;
    client.subscribe((state) => (last = state));
    client.close();
    expect(last).toMatchObject({ status: "offline" });
  });
});

describe("an app listener that throws", () => {
  it("is reported, and neither the other listeners nor the reconnect stop", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket);
    const reported: unknown[] = [];
    const original = console.error;
    console.error = (error: unknown) => reported.push(error);
    let opened: RealtimeConnection | undefined;
    try {
      const client = (opened = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), onStatus: () => {
        throw new Error("onStatus bug");
      } }));
      client.subscribe(() => {
        throw new Error("subscriber bug");
      });
      client.presence.subscribe(() => {
        throw new Error("presence bug");
      });
      const statuses: string[] = [];
      client.subscribe((state) => statuses.push(state.status));
      await until(() => client.status === "live" && client.presence.seq === 1, "live with the snapshot");
      h.last().close(1012, "restart");
      await until(() => h.sockets.length === 2 && client.status === "live", "live again after the drop");
      expect(statuses).toContain("resuming");
      expect(reported.map(String)).toEqual(expect.arrayContaining(["Error: onStatus bug", "Error: subscriber bug", "Error: presence bug"]));
    } finally {
      opened?.close();
      console.error = original;
    }
  });
});
