import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../protocol/index.js";
import { until } from "../../test-support/until.js";
import type { ConnectionStatus } from "../connect.js";
import { A, guildId, jwt, NodeWebSocket } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

const sdk = sdkFixture();

const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 } };

describe("connect()", () => {
  it("authenticates first, goes live on the ack and applies the snapshot", async () => {
    const hub = await sdk.startHub();
    const statuses: ConnectionStatus[] = [];
    const client = sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600), rooms: [A], onStatus: (s) => statuses.push(s) });
    const [auth] = await until(() => hub.auths().length === 1 && hub.auths(), "the auth message");
    expect(auth).toEqual({ type: "auth", token: expect.any(String), rooms: [A], batch: true });
    hub.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 3 });
    hub.send({ v: 1, type: "snapshot", payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [] }] }, seq: 3 });
    await until(() => client.presence.seq === 3, "the snapshot");
    expect(statuses).toEqual(["connecting", "live"]);
  });

  it("applies each envelope of a batch frame in order, and resumes from the one before a gap inside it", async () => {
    const hub = await sdk.startHub();
    const client = sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600) });
    await until(() => hub.auths().length === 1, "the auth");
    hub.ack(hub.last(), 1);
    await until(() => client.presence.seq === 1, "the snapshot");
    const joined = (seq: number, userId: string) => ({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId }, ts: 1, seq });
    hub.send({ v: 1, type: "batch", events: [joined(2, "210000000000000001"), joined(3, "210000000000000002")] });
    await until(() => client.presence.seq === 3, "both events of the batch");
    expect(client.presence.membersOf(A).map((m) => m.userId)).toEqual(["210000000000000001", "210000000000000002"]);
    hub.send({ v: 1, type: "batch", events: [joined(4, "210000000000000003"), joined(6, "210000000000000004"), joined(7, "210000000000000005")] });
    const [, resume] = await until(() => hub.auths().length === 2 && hub.auths(), "a resume after the gap");
    expect(resume).toMatchObject({ since: 4 });
    expect(client.presence.seq).toBe(4);
  });

  it("resumes from its last seq after a drop, and applies the replayed events", async () => {
    const hub = await sdk.startHub();
    const client = sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600) });
    await until(() => hub.auths().length === 1, "the first auth");
    hub.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 5 });
    hub.send({ v: 1, type: "snapshot", payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [] }] }, seq: 5 });
    await until(() => client.presence.seq === 5, "the snapshot");
    hub.last().terminate();
    const [, resume] = await until(() => hub.auths().length === 2 && hub.auths(), "a second auth");
    expect(resume).toMatchObject({ since: 5 });
    hub.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 6 });
    hub.send({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId: "210000000000000001" }, ts: 1, seq: 6 });
    await until(() => client.presence.seq === 6, "the replayed event");
    expect(client.presence.getSnapshot().rooms[0]!.members).toEqual([expect.objectContaining({ userId: "210000000000000001" })]);
    expect(client.status).toBe("live");
  });

  it("reconnects and resumes when it sees a seq gap", async () => {
    const hub = await sdk.startHub();
    sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600) });
    await until(() => hub.auths().length === 1, "the first auth");
    hub.send({ v: 1, type: "snapshot", payload: { rooms: [] }, seq: 1 });
    hub.send({ v: 1, type: "event", event: "room.created", payload: { guildId, channelId: A, name: "A", userLimit: 0 }, ts: 1, seq: 3 });
    const [, resume] = await until(() => hub.auths().length === 2 && hub.auths(), "a resume after the gap");
    expect(resume).toMatchObject({ since: 1 });
  });

  it("sends a fresh token on the open socket before the old one expires", async () => {
    const hub = await sdk.startHub();
    let issued = 0;
    sdk.connect({ ...fast, url: hub.url, refreshBeforeExpiryMs: 61_500, getToken: async () => jwt(63, `user-${++issued}`) });
    await until(() => hub.auths().length === 1, "the first auth");
    await until(() => hub.auths().length === 2, "a refresh auth", 4_000);
    expect(hub.sockets).toHaveLength(1);
    expect(hub.auths()[1]).toEqual({ type: "auth", token: expect.any(String) });
    expect(hub.auths()[1]!.token).not.toBe(hub.auths()[0]!.token);
  });

  it("asks for a new token and reconnects after 4401", async () => {
    const hub = await sdk.startHub();
    let issued = 0;
    sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600, `user-${++issued}`) });
    await until(() => hub.auths().length === 1, "the first auth");
    hub.last().close(4401, "token expired");
    await until(() => hub.auths().length === 2, "a reconnect with a new token");
    expect(issued).toBe(2);
  });

  it("fails for good on 4403, with the reason", async () => {
    const hub = await sdk.startHub();
    let detail: string | undefined;
    sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600), onStatus: (s, d) => s === "failed" && (detail = d) });
    await until(() => hub.auths().length === 1, "the first auth");
    hub.last().close(4403, "guild not allowed");
    await until(() => detail, "failed with a reason");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(hub.sockets).toHaveLength(1);
  });

  it("treats a socket that stops answering pings as dead and reconnects", async () => {
    const hub = await sdk.startHub();
    sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600), pingIntervalMs: 50, pongTimeoutMs: 50 });
    await until(() => hub.auths().length === 1, "the first auth");
    await until(() => hub.received.includes("ping"), "a ping");
    hub.answerPing = false;
    await until(() => hub.auths().length === 2, "a reconnect after missing pongs", 3_000);
  });
});

describe("client backoff", () => {
  it("grows exponentially with full jitter within its bounds", () => {
    const policy = { minMs: 500, maxMs: 30_000, factor: 2 };
    for (let attempt = 0; attempt < 12; attempt++) {
      for (const r of [0, 0.5, 0.999]) {
        const delay = backoffDelay(attempt, policy, () => r);
        expect(delay).toBeGreaterThanOrEqual(500);
        expect(delay).toBeLessThanOrEqual(Math.min(30_000, 500 * 2 ** attempt));
      }
    }
  });
});
