import { describe, expect, expectTypeOf, it } from "vitest";
import type { EventEnvelope } from "../../protocol/index.js";
import { until } from "../../test-support/until.js";
import { A, guildId, jwt, NodeWebSocket, U } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

const sdk = sdkFixture();

const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 }, browser: false as const };
const event = (seq: number, name: EventEnvelope["event"], payload: Record<string, unknown>) => ({ v: 1, type: "event", event: name, payload: { guildId, ...payload }, ts: 1, seq });

describe("connection.on", () => {
  it("calls a listener with the typed payload and envelope of its event only, and stops after unsubscribe", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600) });
    const joins: string[] = [];
    const all: string[] = [];
    const off = client.on("voice.joined", (payload, envelope) => {
      expectTypeOf(payload.userId).toEqualTypeOf<string>();
      expectTypeOf(envelope.event).toEqualTypeOf<"voice.joined">();
      joins.push(`${payload.userId}@${payload.channelId}#${envelope.seq}`);
    });
    client.on("*", (_payload, envelope) => all.push(envelope.event));
    await until(() => client.status === "live" && client.presence.seq === 1, "live with the snapshot");
    h.send(event(2, "voice.joined", { channelId: A, userId: U }));
    h.send(event(3, "voice.left", { channelId: A, userId: U }));
    await until(() => all.length === 2, "two events");
    off();
    h.send(event(4, "voice.joined", { channelId: A, userId: U }));
    await until(() => all.length === 3, "a third event");
    expect(joins).toEqual([`${U}@${A}#2`]);
    expect(all).toEqual(["voice.joined", "voice.left", "voice.joined"]);
  });
});

describe("connection.setRooms", () => {
  it("sends the new filter on the live socket, applies the hub's snapshot, and resumes with it later", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket, 5);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), rooms: [A] });
    await until(() => client.status === "live" && client.presence.seq === 5, "live");
    const B = "110000000000000002";
    client.setRooms([B]);
    client.setRooms([B]); // unchanged: nothing sent
    await until(() => h.received.some((m) => typeof m === "object" && m.type === "rooms"), "the rooms message");
    expect(h.received.filter((m) => typeof m === "object" && m.type === "rooms")).toEqual([{ type: "rooms", rooms: [B] }]);
    h.send({ v: 1, type: "snapshot", payload: { rooms: [{ channelId: B, name: "B", userLimit: 4, members: [{ userId: U }] }] }, seq: 7 });
    await until(() => client.presence.seq === 7, "the answering snapshot");
    expect(client.presence.membersOf(B)).toEqual([{ userId: U }]);
    expect(h.sockets).toHaveLength(1);

    client.setRooms(undefined);
    await until(() => h.received.filter((m) => typeof m === "object" && m.type === "rooms").length === 2, "the second rooms message");
    expect(h.received.at(-1)).toEqual({ type: "rooms" });
    h.send({ v: 1, type: "snapshot", payload: { rooms: [] }, seq: 8 });
    await until(() => client.presence.seq === 8, "the second answering snapshot");
    h.last().close(1012, "restart");
    const resume = await until(() => h.auths()[1], "the resume");
    expect(resume, "a resume for every room").toEqual({ type: "auth", token: expect.any(String), since: 8, batch: true });
  });

  it("asks for a snapshot, not a replay, when the connection drops before the hub answered a filter change", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket, 5);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), rooms: [A] });
    await until(() => client.status === "live" && client.presence.seq === 5, "live");
    client.setRooms(["110000000000000002"]);
    await until(() => h.received.some((m) => typeof m === "object" && m.type === "rooms"), "the rooms message");
    h.last().close(1012, "restart");
    const resume = await until(() => h.auths()[1], "the reconnect");
    expect(resume).toEqual({ type: "auth", token: expect.any(String), rooms: ["110000000000000002"], batch: true });
  });

  it("sends a filter changed while authenticating right after the ack", async () => {
    const h = await sdk.startHub();
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), rooms: [A] });
    await until(() => h.auths().length === 1, "the auth");
    client.setRooms([]);
    expect(h.received.some((m) => typeof m === "object" && m.type === "rooms")).toBe(false);
    h.ack();
    await until(() => h.received.some((m) => typeof m === "object" && m.type === "rooms"), "the rooms message after the ack");
    expect(h.received.at(-1)).toEqual({ type: "rooms", rooms: [] });
  });

  it("detects gaps once a snapshot for an unfiltered subscription arrives, not before", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket, 1);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), rooms: [A] });
    await until(() => client.status === "live" && client.presence.seq === 1, "live");
    client.setRooms(undefined);
    h.send(event(3, "room.created", { channelId: "110000000000000003", name: "C", userLimit: 0 })); // filtered-era skip
    await until(() => client.presence.seq === 3, "the event past a filtered one");
    h.send({ v: 1, type: "snapshot", payload: { rooms: [] }, seq: 4 });
    await until(() => client.presence.seq === 4, "the snapshot");
    h.send(event(6, "room.deleted", { channelId: A }));
    const resume = await until(() => h.auths()[1], "a resume after the gap");
    expect(resume).toMatchObject({ since: 4 });
  });
});
