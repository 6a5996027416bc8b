import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MEDIA_COALESCE_MS, type IdentifiedInternalEvent } from "../../protocol/index.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { newChannelId, newUserId, TestSocket } from "./support/edge.js";
import { channelState, NO_MEDIA, voiceState, type Media } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

/**
 * Members' media flags: the hub holds them at once (snapshots show them) and publishes at most one `voice.media`
 * per member per MEDIA_COALESCE_MS, with the flags at the window's end; a burst that ends where it began publishes
 * nothing. The window is closed by the hub's alarm, by the real clock.
 */
let hubs = 0;

async function memberInRoom(media: Partial<Media> = {}) {
  const stub = env.GUILD_HUB.get(env.GUILD_HUB.idFromName(`media-${++hubs}`));
  const ingest = (...events: IdentifiedInternalEvent[]) => stub.ingest(TEST_GUILD_ID, events);
  const room = newChannelId();
  const user = newUserId();
  await ingest(channelState(room), voiceState(user, room, media));
  const connect = async (since?: number) => {
    const response = await stub.fetch(new Request("https://edge.test/ws", { headers: { Upgrade: "websocket" } }));
    const socket = new TestSocket(response.webSocket!);
    await socket.auth(await mintToken({ sub: newUserId() }), since === undefined ? {} : { since });
    return socket;
  };
  const socket = await connect();
  await socket.waitFor((m) => m.type === "snapshot", "the snapshot");
  const mediaEvents = () => socket.events().filter((e) => e.event === "voice.media");
  const memberMedia = async () => (await stub.snapshot(TEST_GUILD_ID)).rooms[0]!.members[0]!.media;
  return { stub, ingest, room, user, socket, mediaEvents, memberMedia, connect };
}

const past = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a member's media flags", () => {
  it("are in the snapshot at once, and published once when the window ends", async () => {
    const { ingest, user, room, socket, mediaEvents, memberMedia } = await memberInRoom();
    const sent = Date.now();
    await ingest(voiceState(user, room, { selfMute: true }));
    expect(await memberMedia()).toEqual({ ...NO_MEDIA, selfMute: true });
    expect(mediaEvents()).toEqual([]);
    const event = await socket.waitFor((m) => m.type === "event" && m.event === "voice.media", "voice.media", 3_000);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(MEDIA_COALESCE_MS - 50);
    expect(event).toMatchObject({ payload: { guildId: TEST_GUILD_ID, channelId: room, userId: user, media: { ...NO_MEDIA, selfMute: true } } });
  });

  it("toggled many times within a window cost one voice.media, with the flags at its end", async () => {
    const { ingest, user, room, mediaEvents } = await memberInRoom();
    for (let i = 0; i < 9; i++) await ingest(voiceState(user, room, { selfMute: i % 2 === 0, selfVideo: i >= 4 }));
    await past(MEDIA_COALESCE_MS + 700);
    expect(mediaEvents().map((e) => e.payload)).toEqual([{ guildId: TEST_GUILD_ID, channelId: room, userId: user, media: { ...NO_MEDIA, selfMute: true, selfVideo: true } }]);
  });

  it("toggled and back within a window publish nothing", async () => {
    const { ingest, user, room, socket, mediaEvents } = await memberInRoom({ selfDeaf: true });
    await ingest(voiceState(user, room, { selfDeaf: false }), voiceState(user, room, { selfDeaf: true, selfStream: true }), voiceState(user, room, { selfDeaf: true }));
    await past(MEDIA_COALESCE_MS + 700);
    expect(mediaEvents()).toEqual([]);
    expect(socket.events()).toEqual([]);
  });

  it("changed in two windows publish twice; a replay from a seq carries them like any event", async () => {
    const { ingest, user, room, socket, mediaEvents, connect } = await memberInRoom();
    const before = (await socket.waitFor((m) => m.type === "snapshot", "the snapshot")).seq;
    await ingest(voiceState(user, room, { selfVideo: true }));
    await socket.waitFor((m) => m.type === "event" && m.event === "voice.media", "the first voice.media", 3_000);
    await ingest(voiceState(user, room, { selfVideo: false }));
    await past(MEDIA_COALESCE_MS + 700);
    expect(mediaEvents().map((e) => e.payload.media.selfVideo)).toEqual([true, false]);
    const resumed = await connect(before);
    await resumed.waitForEvents(2, "the replayed voice.media events");
    expect(resumed.events().map((e) => e.event)).toEqual(["voice.media", "voice.media"]);
  });

  it("changed together with a move travel on the voice.joined, not on a voice.media", async () => {
    const { ingest, user, socket, mediaEvents } = await memberInRoom();
    const other = newChannelId();
    await ingest(channelState(other));
    await ingest(voiceState(user, other, { selfVideo: true }));
    const join = await socket.waitFor((m) => m.type === "event" && m.event === "voice.joined", "the move's join");
    expect(join).toMatchObject({ payload: { channelId: other, media: { ...NO_MEDIA, selfVideo: true } } });
    await past(MEDIA_COALESCE_MS + 500);
    expect(mediaEvents()).toEqual([]);
  });
});
