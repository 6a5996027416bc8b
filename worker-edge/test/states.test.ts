import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentifiedInternalEvent, ServerMessage } from "../../protocol/index.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { edgeFetch, authed, newChannelId, newUserId, TestSocket } from "./support/edge.js";
import { channelState, guildState, joined, NO_MEDIA, roomCreated, sync, voiceState } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

/**
 * The hub turns the gateway's states into what clients see: joins, moves and leaves from voice states, rooms from
 * channel states, the guild's status from guild states. A state the hub already holds publishes nothing, so a
 * repeat or a replay (at-least-once delivery) changes nothing.
 */
let hubs = 0;

/** A guild's hub of its own (fresh storage), with a live socket that saw its snapshot. */
async function freshHub() {
  const stub = env.GUILD_HUB.get(env.GUILD_HUB.idFromName(`states-${++hubs}`));
  const response = await stub.fetch(new Request("https://edge.test/ws", { headers: { Upgrade: "websocket" } }));
  const socket = new TestSocket(response.webSocket!);
  await socket.auth(await mintToken({ sub: newUserId() }));
  await socket.waitFor((m) => m.type === "snapshot", "the first snapshot");
  const ingest = (...events: IdentifiedInternalEvent[]) => stub.ingest(TEST_GUILD_ID, events);
  const published = () => socket.events().map((e) => `${e.event}:${"userId" in e.payload ? `${e.payload.userId}@` : ""}${"channelId" in e.payload ? e.payload.channelId : ""}${"status" in e.payload ? e.payload.status : ""}`);
  return { stub, socket, ingest, published };
}

describe("voice states", () => {
  it("publish a join, a move and a leave, with the member's flags on the join", async () => {
    const { ingest, published, socket, stub } = await freshHub();
    const [a, b] = [newChannelId(), newChannelId()];
    const user = newUserId();
    await ingest(channelState(a, { name: "A" }), channelState(b, { name: "B" }));
    await ingest(voiceState(user, a, { selfVideo: true }, { username: "Tamsin" }), voiceState(user, b, { selfVideo: true }), voiceState(user, null));
    await socket.waitForEvents(6, "two rooms, a join, a move and a leave");
    expect(published()).toEqual([`room.created:${a}`, `room.created:${b}`, `voice.joined:${user}@${a}`, `voice.left:${user}@${a}`, `voice.joined:${user}@${b}`, `voice.left:${user}@${b}`]);
    expect(socket.events()[2]!.payload).toEqual({ guildId: TEST_GUILD_ID, channelId: a, userId: user, username: "Tamsin", media: { ...NO_MEDIA, selfVideo: true } });
    expect((await stub.snapshot(TEST_GUILD_ID)).rooms.flatMap((room) => room.members)).toEqual([]);
  });

  it("publish nothing for a state the hub already holds: a duplicate under another id, or a replay of the whole stream", async () => {
    const { ingest, published, socket } = await freshHub();
    const room = newChannelId();
    const user = newUserId();
    const stream = () => [channelState(room), voiceState(user, room, { selfMute: true }, { username: "Ravi" })];
    await ingest(...stream());
    await socket.waitForEvents(2, "the room and the join");
    const outcome = await ingest(...stream(), ...stream()); // new ids: what a restarted gateway replays
    expect(outcome).toMatchObject({ kind: "applied", accepted: 4, duplicates: 0 });
    await new Promise((resolve) => setTimeout(resolve, 700)); // past a media window: nothing was opened either
    expect(published()).toEqual([`room.created:${room}`, `voice.joined:${user}@${room}`]);
  });

  it("of a member in a channel that is not a room (a stage, a text channel) put them in no room; a move from a room to one is a leave", async () => {
    const { ingest, published, socket, stub } = await freshHub();
    const [room, stage] = [newChannelId(), newChannelId()];
    const user = newUserId();
    await ingest(channelState(room), channelState(stage, { type: 13, name: "Town Hall", userLimit: 10_000 }), channelState(newChannelId(), { type: 0, name: "chat", userLimit: 0 }));
    await ingest(voiceState(user, stage), voiceState(user, room), voiceState(user, stage));
    await socket.waitForEvents(3, "the room, the join and the leave");
    expect(published()).toEqual([`room.created:${room}`, `voice.joined:${user}@${room}`, `voice.left:${user}@${room}`]);
    expect((await stub.snapshot(TEST_GUILD_ID)).rooms.map((r) => r.channelId)).toEqual([room]);
  });
});

describe("channel states", () => {
  it("create a room, update it only when its name, limit or parent changed, and end it when deleted", async () => {
    const { ingest, published, socket, stub } = await freshHub();
    const room = newChannelId();
    await ingest(channelState(room, { name: "Pod" }), channelState(room, { name: "Pod" }), channelState(room, { name: "Pod", userLimit: 6 }), channelState(room, { name: "Pod", userLimit: 6, deleted: true }));
    await socket.waitForEvents(3, "created, updated, deleted");
    await ingest(channelState(room, { name: "Pod" })); // late: a deleted channel never comes back (Discord never reuses an id)
    expect(published()).toEqual([`room.created:${room}`, `room.updated:${room}`, `room.deleted:${room}`]);
    expect((await stub.snapshot(TEST_GUILD_ID)).rooms).toEqual([]);
  });
});

describe("guild states: what clients see while Discord reports an outage or the bot is not in the guild", () => {
  it("an outage keeps the picture, marked unavailable, until a picture is applied", async () => {
    const { ingest, socket, stub } = await freshHub();
    const room = newChannelId();
    const user = newUserId();
    await ingest(channelState(room), voiceState(user, room));
    await ingest(guildState("unavailable"), guildState("unavailable"));
    const status = await socket.waitFor((m) => m.type === "event" && m.event === "guild.status", "guild.status");
    expect(status).toMatchObject({ payload: { guildId: TEST_GUILD_ID, status: "unavailable" } });
    const during = await stub.snapshot(TEST_GUILD_ID);
    expect(during).toMatchObject({ status: "unavailable", rooms: [{ channelId: room, members: [{ userId: user }] }] });
    await ingest(sync([room], [{ userId: user, channelId: room }]));
    await socket.waitFor((m) => m.type === "event" && m.event === "guild.status" && m.payload.status === "available", "available again");
    expect((await stub.snapshot(TEST_GUILD_ID)).status).toBe("available");
    expect(socket.events().filter((e) => e.event === "guild.status")).toHaveLength(2);
  });

  it("the bot removed: guild.status absent, room.deleted for every room, no members; states meanwhile change nothing; a new picture brings the rooms back", async () => {
    const { ingest, published, socket, stub } = await freshHub();
    const [a, b] = [newChannelId(), newChannelId()];
    const [u1, u2] = [newUserId(), newUserId()];
    await ingest(channelState(a), channelState(b), voiceState(u1, a), voiceState(u2, b));
    await socket.waitForEvents(4, "the picture");
    await ingest(guildState("absent"), voiceState(u1, b), channelState(newChannelId()));
    await socket.waitForEvents(7, "absent and both rooms deleted");
    expect(published().slice(4)).toEqual(["guild.status:absent", `room.deleted:${a}`, `room.deleted:${b}`]);
    expect(await stub.snapshot(TEST_GUILD_ID)).toEqual({ guildId: TEST_GUILD_ID, seq: 7, rooms: [], status: "absent" });

    // A client connecting now sees the status in its snapshot, and GET /rooms says the same.
    const response = await stub.fetch(new Request("https://edge.test/ws", { headers: { Upgrade: "websocket" } }));
    const fresh = new TestSocket(response.webSocket!);
    await fresh.auth(await mintToken({ sub: newUserId() }));
    const snapshot = (await fresh.waitFor((m) => m.type === "snapshot", "the snapshot")) as Extract<ServerMessage, { type: "snapshot" }>;
    expect(snapshot.payload).toEqual({ rooms: [], status: "absent" });

    // Invited again: the GUILD_CREATE's picture. The rooms were not ended: they come back.
    await ingest(sync([a], [{ userId: u1, channelId: a }]));
    await socket.waitForEvents(10, "available, the room and its member");
    expect(published().slice(7)).toEqual(["guild.status:available", `room.created:${a}`, `voice.joined:${u1}@${a}`]);
    expect((await stub.snapshot(TEST_GUILD_ID)).status).toBe("available");
  });

  it("GET /rooms carries the status (available on a hub that never heard otherwise)", async () => {
    const response = await edgeFetch("/rooms", authed(await mintToken()));
    expect(await response.json()).toMatchObject({ guildId: TEST_GUILD_ID, status: "available" });
  });

  it("a lease term may begin with the bot's absence: it is a whole picture too", async () => {
    const stub = env.GUILD_HUB.get(env.GUILD_HUB.idFromName(`states-lease-${++hubs}`));
    const gateway = { instance: "gw-absent", term: 0 };
    const refused = await stub.ingest(TEST_GUILD_ID, [voiceState(newUserId(), null)], gateway);
    expect(refused).toMatchObject({ kind: "refused", refusal: { error: "sync_required" } });
    const term = (refused as { refusal: { lease: { term: number } } }).refusal.lease.term;
    const begun = await stub.ingest(TEST_GUILD_ID, [guildState("absent")], { ...gateway, term });
    expect(begun).toMatchObject({ kind: "applied", lease: { term } });
    expect((begun as { lease: { syncRequired?: true } }).lease.syncRequired).toBeUndefined();
  });
});

describe("the previous release's deltas (accepted for one release)", () => {
  it("still apply beside states", async () => {
    const { ingest, published, socket } = await freshHub();
    const room = newChannelId();
    const user = newUserId();
    await ingest(roomCreated(room), joined(room, user, "Old"));
    await ingest(voiceState(user, room, {}, { username: "Old" })); // the same state: nothing
    await socket.waitForEvents(2, "the room and the join");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(published()).toEqual([`room.created:${room}`, `voice.joined:${user}@${room}`]);
  });
});
