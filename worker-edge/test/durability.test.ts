import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { authed, edgeFetch, hubStub, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { joined, roomCreated } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

type RoomsBody = { seq: number; rooms: Array<{ channelId: string; members: Array<{ userId: string; username?: string }> }> };

describe("state survives eviction", () => {
  it("keeps rooms, members, seq and seen ids across an eviction", async () => {
    const room = newChannelId();
    const user = newUserId();
    const created = roomCreated(room);
    await postInternal({ events: [created, joined(room, user, "Tamsin")] });
    const before = await (await edgeFetch("/rooms", authed(await mintToken()))).json<RoomsBody>();

    await evictDurableObject(hubStub(), { webSockets: "close" });

    const after = await (await edgeFetch("/rooms", authed(await mintToken()))).json<RoomsBody>();
    expect(after).toEqual(before);
    expect(after.rooms.find((r) => r.channelId === room)!.members).toEqual([{ userId: user, username: "Tamsin", media: { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false } }]);
    const replay = await postInternal({ events: [created] });
    expect(await replay.json()).toMatchObject({ duplicates: 1 });
  });

  it("keeps delivering to a socket across hibernation, continuing the sequence", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    const room = newChannelId();
    await postInternal({ events: [roomCreated(room)] });
    const [first] = await socket.waitForEvents(1, "room.created before hibernation");

    await evictDurableObject(hubStub(), { webSockets: "hibernate" });

    await postInternal({ events: [joined(room, newUserId())] });
    const events = await socket.waitForEvents(2, "voice.joined after hibernation");
    expect(events[1]!.seq).toBe(first!.seq + 1);
    socket.send("ping");
    await expect.poll(() => socket.raw.includes("pong")).toBe(true);
  });
});
