import { describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import type { EventEnvelope } from "../../protocol/index.js";
import { A, guildId, jwt, NodeWebSocket, sleep, U } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

const sdk = sdkFixture();

const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 } };

describe("events from a newer hub", () => {
  it("applies the seq of an event it does not know, ignores the event and stays connected", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => hub.ack(socket, 1);
    const events: EventEnvelope[] = [];
    const client = sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600), onEvent: (e) => events.push(e) });
    await until(() => client.status === "live" && client.presence.seq === 1, "live with the snapshot");

    hub.send({ v: 1, type: "event", event: "voice.updated", payload: { guildId, channelId: A, userId: U, muted: true }, ts: 1, seq: 2 });
    // A known event with fields this client does not know: still applied.
    hub.send({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId: U, nick: "n" }, ts: 2, seq: 3, trace: "x" });
    await until(() => client.presence.seq === 3 || hub.sockets.length > 1, "seq 3 or a reconnect");
    await sleep(100);

    expect(hub.sockets, "no reconnect: the unknown event's seq was applied, so seq 3 is not a gap").toHaveLength(1);
    expect(client.presence.seq).toBe(3);
    expect(client.presence.getSnapshot().rooms[0]!.members).toEqual([expect.objectContaining({ userId: U })]);
    expect(events.map((e) => e.event)).toEqual(["voice.joined"]);
    expect(client.status).toBe("live");
  });

  it("does not apply a known event it cannot read, and takes a fresh snapshot instead of resuming into it again", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => hub.ack(socket, 1);
    const client = sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600) });
    await until(() => client.status === "live" && client.presence.seq === 1, "live with the snapshot");

    hub.send({ v: 1, type: "event", event: "room.created", payload: { guildId, channelId: "110000000000000002", name: "B", userLimit: "four" }, ts: 1, seq: 2 });
    const [, again] = await until(() => hub.auths().length === 2 && hub.auths(), "a reconnect after an unreadable room.created");
    expect(again).not.toHaveProperty("since");
    expect(client.presence.getSnapshot().rooms.map((r) => r.name)).toEqual(["A"]);
  });

  it("ignores messages that are not well-formed envelopes without moving its seq", async () => {
    const hub = await sdk.startHub();
    hub.onAuth = (socket) => hub.ack(socket, 1);
    const details: string[] = [];
    const client = sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600), onStatus: (_s, d) => d && details.push(d) });
    await until(() => client.status === "live" && client.presence.seq === 1, "live with the snapshot");
    hub.send({ v: 1, type: "event", event: "voice.updated", payload: [], ts: 1, seq: 2 });
    hub.last().send("not json");
    await until(() => details.length >= 2, "two reports of malformed messages");
    expect(client.presence.seq).toBe(1);
    expect(hub.sockets).toHaveLength(1);
  });
});
