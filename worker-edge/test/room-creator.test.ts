import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { channelOf, type Room } from "../../protocol/index.js";
import { DiscordFake } from "./support/discord-fake.js";
import { authed, createRoom, edgeFetch, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { roomCreated } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

let discord: DiscordFake;
beforeEach(() => {
  discord = new DiscordFake();
  discord.install();
});
afterEach(() => vi.restoreAllMocks());

async function liveSocket(): Promise<TestSocket> {
  const socket = await TestSocket.open();
  await socket.auth(await mintToken({ sub: newUserId() }));
  await socket.waitFor((m) => m.type === "snapshot", "snapshot");
  return socket;
}

async function create(sub: string, name: string): Promise<string> {
  const response = await createRoom(await mintToken({ sub }), { name });
  expect(response.status).toBe(201);
  return (await response.json<{ channelId: string }>()).channelId;
}

async function restRoom(channelId: string): Promise<Room | undefined> {
  const body = await (await edgeFetch("/rooms", authed(await mintToken({ sub: newUserId() })))).json<{ rooms: Room[] }>();
  return body.rooms.find((room) => room.channelId === channelId);
}

async function snapshotRoom(channelId: string): Promise<Room | undefined> {
  const socket = await liveSocket();
  const snapshot = socket.messages.find((m) => m.type === "snapshot");
  socket.ws.close(1000, "done");
  return snapshot?.type === "snapshot" ? snapshot.payload.rooms.find((room) => room.channelId === channelId) : undefined;
}

async function ingest(...events: unknown[]): Promise<void> {
  expect((await postInternal({ events })).status).toBe(200);
}

describe("a room's creator on the wire", () => {
  it("names the creator of a REST-created room in room.created, the snapshot, GET /rooms and a later room.updated", async () => {
    const socket = await liveSocket();
    const creator = newUserId();
    const channelId = await create(creator, "Cube draft");
    const event = await socket.waitFor((m) => m.type === "event" && channelOf(m) === channelId, "room.created");
    expect(event).toMatchObject({ event: "room.created", payload: { channelId, name: "Cube draft", creatorId: creator } });
    expect((await snapshotRoom(channelId))?.creatorId).toBe(creator);
    expect((await restRoom(channelId))?.creatorId).toBe(creator);
    await ingest(roomCreated(channelId, "Cube draft, round 2")); // renamed in Discord
    const renamed = await socket.waitFor((m) => m.type === "event" && m.event === "room.updated" && m.payload.channelId === channelId, "room.updated");
    expect(renamed).toMatchObject({ payload: { name: "Cube draft, round 2", creatorId: creator } });
  });

  it("leaves creatorId out for a room the service did not create, whatever the gateway's event claims", async () => {
    const socket = await liveSocket();
    const channelId = DiscordFake.nextChannelId() + "9"; // an id no create in this file will hand out
    await ingest({ ...roomCreated(channelId, "Made in Discord"), payload: { ...roomCreated(channelId).payload, name: "Made in Discord", creatorId: newUserId() } });
    const event = await socket.waitFor((m) => m.type === "event" && channelOf(m) === channelId, "room.created");
    expect(event.type === "event" && "creatorId" in event.payload).toBe(false);
    expect(await snapshotRoom(channelId)).not.toHaveProperty("creatorId");
    expect(await restRoom(channelId)).not.toHaveProperty("creatorId");
  });

  it("announces the creator with room.updated when the gateway's CHANNEL_CREATE beat the REST create", async () => {
    const socket = await liveSocket();
    const creator = newUserId();
    let release = () => undefined as void;
    discord.hold = new Promise<void>((resolve) => (release = resolve));
    const channelId = DiscordFake.nextChannelId();
    const pending = create(creator, "Racing create");
    await expect.poll(() => discord.calls.length).toBe(1);
    await ingest(roomCreated(channelId, "Racing create"));
    await socket.waitFor((m) => m.type === "event" && channelOf(m) === channelId, "the gateway's room.created");
    release();
    await pending;
    const update = await socket.waitFor((m) => m.type === "event" && m.event === "room.updated" && m.payload.channelId === channelId, "room.updated");
    expect(update).toMatchObject({ payload: { channelId, name: "Racing create", creatorId: creator } });
    expect((await restRoom(channelId))?.creatorId).toBe(creator);
  });

  it("records a creator whose id is not a snowflake, who may end the room, without publishing the id", async () => {
    const creator = "user-without-a-snowflake-id";
    const channelId = await create(creator, "Odd id");
    expect(await restRoom(channelId)).not.toHaveProperty("creatorId");
    const ended = await edgeFetch(`/end-room/${channelId}`, authed(await mintToken({ sub: creator }), { method: "DELETE" }));
    expect(ended.status).toBe(200);
  });
});
