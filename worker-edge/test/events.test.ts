import { describe, expect, it, vi } from "vitest";
import { channelOf } from "../../protocol/index.js";
import { DiscordFake } from "./support/discord-fake.js";
import { authed, createRoom, edgeFetch, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { joined, left, roomCreated, roomDeleted, sync } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

async function liveSocket(extra: Record<string, unknown> = {}): Promise<TestSocket> {
  const socket = await TestSocket.open();
  await socket.auth(await mintToken({ sub: newUserId() }), extra);
  await socket.waitFor((m) => m.type === "snapshot" || m.type === "event" || true, "catch-up");
  return socket;
}

async function ingest(...events: unknown[]): Promise<void> {
  const response = await postInternal({ events });
  expect(response.status).toBe(200);
}

function names(socket: TestSocket): string[] {
  return socket.events().map((e) => `${e.event}:${"userId" in e.payload ? e.payload.userId + "@" : ""}${channelOf(e)}`);
}

describe("broadcast semantics", () => {
  it("numbers events with consecutive seq", async () => {
    const socket = await liveSocket();
    const room = newChannelId();
    await ingest(roomCreated(room), joined(room, newUserId()), joined(room, newUserId()));
    const events = await socket.waitForEvents(3, "room and two joins");
    const start = events[0]!.seq;
    expect(events.map((e) => e.seq)).toEqual([start, start + 1, start + 2]);
  });

  it("treats a mute (same room again) as no event, and a move as left(old) then joined(new)", async () => {
    const socket = await liveSocket();
    const [a, b] = [newChannelId(), newChannelId()];
    const user = newUserId();
    await ingest(roomCreated(a), roomCreated(b), joined(a, user, "Mira"));
    await ingest(joined(a, user, "Mira")); // a mute toggle arrives as the same channel
    await ingest(left(a, user), joined(b, user, "Mira"));
    await ingest(joined(a, user)); // a move whose left was lost still leaves b first
    await socket.waitForEvents(7, "move events");
    expect(names(socket)).toEqual([
      `room.created:${a}`,
      `room.created:${b}`,
      `voice.joined:${user}@${a}`,
      `voice.left:${user}@${a}`,
      `voice.joined:${user}@${b}`,
      `voice.left:${user}@${b}`,
      `voice.joined:${user}@${a}`,
    ]);
  });

  it("announces a REST-created room once, even when the gateway's CHANNEL_CREATE follows", async () => {
    const discord = new DiscordFake();
    discord.install();
    try {
      const socket = await liveSocket();
      const response = await createRoom(await mintToken(), { name: "Draft night" });
      const { channelId } = await response.json<{ channelId: string }>();
      await ingest(roomCreated(channelId, "Draft night"));
      await ingest(joined(channelId, newUserId()));
      await socket.waitForEvents(2, "room.created then voice.joined");
      expect(socket.events().map((e) => e.event)).toEqual(["room.created", "voice.joined"]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("lets a REST-created room that an older sync did not list come back with its creator", async () => {
    const discord = new DiscordFake();
    discord.install();
    try {
      const socket = await liveSocket();
      const creator = newUserId();
      const token = await mintToken({ sub: creator });
      const { channelId } = await (await createRoom(token, { name: "Racing sync" })).json<{ channelId: string }>();
      // A picture taken before the create arrives after it, then the gateway's CHANNEL_CREATE for the room.
      const others = (await (await edgeFetch("/rooms", authed(token))).json<{ rooms: Array<{ channelId: string }> }>()).rooms
        .map((room) => room.channelId)
        .filter((id) => id !== channelId);
      await ingest(sync(others, []));
      await ingest(roomCreated(channelId, "Racing sync"));
      const mine = () => socket.events().filter((e) => channelOf(e) === channelId).map((e) => e.event);
      await expect.poll(mine).toEqual(["room.created", "room.deleted", "room.created"]);
      const ended = await edgeFetch(`/end-room/${channelId}`, authed(token, { method: "DELETE" }));
      expect(ended.status).toBe(200);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("does not revive an ended room when the gateway's CHANNEL_CREATE arrives late", async () => {
    const discord = new DiscordFake();
    discord.install();
    try {
      const socket = await liveSocket();
      const token = await mintToken();
      const { channelId } = await (await createRoom(token, { name: "Short game" })).json<{ channelId: string }>();
      expect((await edgeFetch(`/end-room/${channelId}`, authed(token, { method: "DELETE" }))).status).toBe(200);
      await ingest(roomCreated(channelId, "Short game"), roomDeleted(channelId)); // the gateway, late
      await ingest(roomCreated(newChannelId(), "marker"));
      await socket.waitForEvents(3, "created, deleted, then the marker");
      expect(names(socket)).toEqual([`room.created:${channelId}`, `room.deleted:${channelId}`, expect.stringMatching(/^room\.created:/)]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("sends voice events only for subscribed rooms, and every room event", async () => {
    const [watched, other] = [newChannelId(), newChannelId()];
    const filtered = await liveSocket({ rooms: [watched] });
    const everything = await liveSocket();
    await ingest(roomCreated(watched), roomCreated(other), joined(other, newUserId()), joined(watched, newUserId()));
    await everything.waitForEvents(4, "all events");
    await filtered.waitForEvents(3, "filtered events");
    expect(filtered.events().map((e) => `${e.event}:${channelOf(e)}`)).toEqual([
      `room.created:${watched}`,
      `room.created:${other}`,
      `voice.joined:${watched}`,
    ]);
  });
});

describe("resume", () => {
  it("replays exactly the missed events in order when `since` is inside the buffer", async () => {
    const first = await liveSocket();
    const seenSeq = first.messages[0]!.seq;
    first.ws.close(1000);
    const room = newChannelId();
    const [u1, u2] = [newUserId(), newUserId()];
    await ingest(roomCreated(room), joined(room, u1), joined(room, u2));
    const resumed = await TestSocket.open();
    await resumed.auth(await mintToken({ sub: newUserId() }), { since: seenSeq });
    const events = await resumed.waitForEvents(3, "missed events");
    expect(events.map((e) => e.seq)).toEqual([seenSeq + 1, seenSeq + 2, seenSeq + 3]);
    expect(resumed.messages.some((m) => m.type === "snapshot")).toBe(false);
  });

  it("sends a snapshot when `since` is ahead of the hub", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: newUserId() }), { since: 10_000_000 });
    await socket.waitFor((m) => m.type === "snapshot", "snapshot");
  });

  it("sends a snapshot when the gap is older than the replay buffer (1000 events)", async () => {
    const first = await liveSocket();
    const seenSeq = first.messages[0]!.seq;
    first.ws.close(1000);
    const room = newChannelId();
    const user = newUserId();
    await ingest(roomCreated(room));
    for (let batch = 0; batch < 3; batch++) {
      const events = [];
      for (let i = 0; i < 200; i++) events.push(joined(room, user), left(room, user));
      await ingest(...events);
    }
    const resumed = await TestSocket.open();
    await resumed.auth(await mintToken({ sub: newUserId() }), { since: seenSeq });
    const snapshot = await resumed.waitFor((m) => m.type === "snapshot", "snapshot instead of replay");
    expect(snapshot.seq).toBe(seenSeq + 1201);
    expect(resumed.events()).toHaveLength(0);
  });
});

describe("guild.sync", () => {
  it("emits exactly the events that bring the hub to Discord's picture", async () => {
    const [keep, gone, fresh] = [newChannelId(), newChannelId(), newChannelId()];
    const [mover, leaver, arriver, stayer] = [newUserId(), newUserId(), newUserId(), newUserId()];
    await ingest(sync([keep, gone], [{ userId: mover, channelId: keep }, { userId: leaver, channelId: gone }, { userId: stayer, channelId: keep }]));
    const socket = await liveSocket();
    await ingest(
      sync([keep, fresh], [
        { userId: mover, channelId: fresh },
        { userId: arriver, channelId: keep },
        { userId: stayer, channelId: keep },
      ]),
    );
    await socket.waitForEvents(6, "sync diff");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(names(socket)).toEqual([
      `room.created:${fresh}`,
      `voice.left:${mover}@${keep}`,
      `voice.left:${leaver}@${gone}`,
      `voice.joined:${mover}@${fresh}`,
      `voice.joined:${arriver}@${keep}`,
      `room.deleted:${gone}`,
    ]);
    const rooms = await (await edgeFetch("/rooms", authed(await mintToken()))).json<{
      rooms: Array<{ channelId: string; members: Array<{ userId: string }> }>;
    }>();
    expect(rooms.rooms.map((r) => r.channelId).sort()).toEqual([keep, fresh].sort());
    expect(rooms.rooms.find((r) => r.channelId === keep)!.members.map((m) => m.userId).sort()).toEqual([arriver, stayer].sort());
  });

  it("emits nothing when the hub already matches", async () => {
    const room = newChannelId();
    const user = newUserId();
    const picture = [{ userId: user, channelId: room }];
    await ingest(sync([room], picture));
    const socket = await liveSocket();
    await ingest(sync([room], picture));
    await ingest(joined(room, newUserId()));
    await socket.waitForEvents(1, "the marker event");
    expect(socket.events().map((e) => e.event)).toEqual(["voice.joined"]);
  });
});

describe("fan-out isolation", () => {
  it("keeps delivering to the other sockets when one disappears mid-broadcast", async () => {
    const [a, gone, b] = [await liveSocket(), await liveSocket(), await liveSocket()];
    gone.ws.close(1001);
    const room = newChannelId();
    await ingest(roomCreated(room), joined(room, newUserId()));
    for (const socket of [a, b]) await socket.waitForEvents(2, "both events on a healthy socket");
    expect(a.events().map((e) => e.seq)).toEqual(b.events().map((e) => e.seq));
  });
});
