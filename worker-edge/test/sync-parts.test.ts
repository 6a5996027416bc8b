import { evictDurableObject } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_INTERNAL_BODY_BYTES, splitGuildSync, type GuildSyncPayload } from "../../protocol/index.js";
import { advanceClock, resetClock } from "../src/clock.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { authed, edgeFetch, hubStub, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { left, roomCreated } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

type RoomsBody = { rooms: Array<{ channelId: string; members: Array<{ userId: string }> }> };

function bigSync(rooms: string[], people: number): GuildSyncPayload {
  return {
    guildId: TEST_GUILD_ID,
    channels: rooms.map((channelId, i) => ({ channelId, name: `Table ${i}`, userLimit: 0 })),
    voiceStates: Array.from({ length: people }, (_, i) => ({
      userId: newUserId(),
      channelId: rooms[i % rooms.length]!,
      username: `player-with-a-long-display-name-${i}`,
      avatar: "a_0123456789abcdef0123456789abcdef",
    })),
  };
}

async function rooms(): Promise<RoomsBody["rooms"]> {
  return (await (await edgeFetch("/rooms", authed(await mintToken({ sub: newUserId() })))).json<RoomsBody>()).rooms;
}

describe("multi-part guild.sync", () => {
  it("converges on a guild whose sync is larger than one request, applying it only when complete", async () => {
    const roomIds = [newChannelId(), newChannelId(), newChannelId()];
    const sync = bigSync(roomIds, 9_000);
    expect(JSON.stringify(sync).length).toBeGreaterThan(MAX_INTERNAL_BODY_BYTES);
    const parts = splitGuildSync(sync, "sync-big");
    expect(parts.length).toBeGreaterThan(3);

    const watcher = await TestSocket.open();
    await watcher.auth(await mintToken({ sub: newUserId() }));
    for (const [index, part] of parts.entries()) {
      const response = await postInternal({ events: [{ id: `big:${index}`, event: "guild.sync", payload: part }] });
      expect(response.status).toBe(200);
      if (index < parts.length - 1) {
        expect(watcher.events()).toHaveLength(0); // nothing is applied from half a picture
        if (index === 1) await evictDurableObject(hubStub(), { webSockets: "hibernate" }); // parts survive eviction
      }
    }
    await watcher.waitForEvents(3 + 9_000, "every room and member of the sync", 10_000);
    const members = (await rooms()).filter((room) => roomIds.includes(room.channelId)).flatMap((room) => room.members);
    expect(members).toHaveLength(9_000);
  }, 30_000);

  it("lets a newer sync supersede parts of an incomplete one", async () => {
    const room = newChannelId();
    const stale = splitGuildSync(bigSync([room], 3_000), "sync-stale");
    await postInternal({ events: [{ id: "stale:0", event: "guild.sync", payload: stale[0]! }] });
    const fresh = { guildId: TEST_GUILD_ID, channels: [{ channelId: room, name: "Fresh", userLimit: 2 }], voiceStates: [] };
    await postInternal({ events: [{ id: "fresh:0", event: "guild.sync", payload: fresh }] });
    // The rest of the stale sync arrives late: it completes a picture older than the one applied, so it is ignored.
    for (const [index, part] of stale.entries()) {
      if (index > 0) await postInternal({ events: [{ id: `stale:${index}`, event: "guild.sync", payload: part }] });
    }
    expect((await rooms()).find((r) => r.channelId === room)?.members).toEqual([]);
  });
});

const HOUR = 3_600_000;

/** The parts of a sync as gateway-node sends them: one event each, ids `<sync>:part<i>`. */
function partEvents(sync: GuildSyncPayload, syncId: string) {
  const parts = splitGuildSync(sync, syncId);
  expect(parts.length).toBeGreaterThanOrEqual(2);
  return parts.map((payload, index) => ({ id: `${syncId}:part${index}`, event: "guild.sync" as const, payload }));
}

async function membersOf(roomIds: string[]): Promise<string[]> {
  return (await rooms()).filter((room) => roomIds.includes(room.channelId)).flatMap((room) => room.members.map((m) => m.userId));
}

/** Time passes while nothing reaches the hub; then one unrelated event lets it run its retention sweep. */
async function outage(ms: number): Promise<void> {
  advanceClock(ms);
  expect((await postInternal({ events: [roomCreated(newChannelId())] })).status).toBe(200);
}

describe("multi-part guild.sync across delivery gaps", () => {
  afterAll(() => resetClock());

  it.each([
    ["11 minutes", 11 * 60_000],
    ["an hour", HOUR],
    ["25 hours, longer than every retention window", 25 * HOUR],
  ])("completes when the gateway retries the whole sync with the same ids after %s", async (_label, gapMs) => {
    const roomIds = [newChannelId(), newChannelId()];
    const sync = bigSync(roomIds, 3_000);
    const events = partEvents(sync, `retry-${gapMs}`);
    // The first request lands; the next does not (the hub unreachable, or 401s from a skewed clock).
    expect((await postInternal({ events: [events[0]!] })).status).toBe(200);
    await outage(gapMs);
    // The gateway retries the batch from its first event, with the same ids.
    for (const event of events) expect((await postInternal({ events: [event] })).status).toBe(200);
    expect(await membersOf(roomIds)).toHaveLength(3_000);
  });

  it("completes a sync split across two batches an hour apart, the first batch acknowledged", async () => {
    const roomIds = [newChannelId()];
    const events = partEvents(bigSync(roomIds, 3_000), "split-batches");
    expect((await postInternal({ events: [events[0]!] })).status).toBe(200); // acknowledged: the gateway moves on
    await outage(HOUR);
    expect((await postInternal({ events: events.slice(1) })).status).toBe(200);
    expect(await membersOf(roomIds)).toHaveLength(3_000);
  });

  it("refuses the rest of a sync whose acknowledged parts it no longer holds, so the gateway sends a fresh one", async () => {
    const roomIds = [newChannelId()];
    const sync = bigSync(roomIds, 3_000);
    const events = partEvents(sync, "split-expired");
    expect((await postInternal({ events: [events[0]!] })).status).toBe(200);
    await outage(25 * HOUR);
    const rest = await postInternal({ events: events.slice(1) });
    expect(rest.status).toBe(400);
    expect(await rest.json()).toMatchObject({ message: expect.stringContaining("send a fresh guild.sync") });
    // gateway-node drops a refused event and sends a fresh picture, which converges.
    for (const event of partEvents(sync, "split-expired-fresh")) await postInternal({ events: [event] });
    expect(await membersOf(roomIds)).toHaveLength(3_000);
  });

  it("does not apply a sync again when the gateway retries it after every retention window", async () => {
    const room = newChannelId();
    const sync = bigSync([room], 3_000);
    const events = partEvents(sync, "applied-once");
    for (const event of events) expect((await postInternal({ events: [event] })).status).toBe(200);
    const leaver = sync.voiceStates[0]!.userId;
    await postInternal({ events: [left(room, leaver)] });
    await outage(25 * HOUR);
    const retried = await postInternal({ events });
    expect(await retried.json()).toMatchObject({ duplicates: events.length });
    expect(await membersOf([room])).not.toContain(leaver); // the older picture did not come back
  });

  it("never applies a sync a newer one superseded, whenever its parts come again", async () => {
    const room = newChannelId();
    const stale = partEvents(bigSync([room], 3_000), "superseded-late");
    await postInternal({ events: [stale[0]!] });
    const fresh = { guildId: TEST_GUILD_ID, channels: [{ channelId: room, name: "Fresh", userLimit: 2 }], voiceStates: [] };
    await postInternal({ events: [{ id: "superseding:0", event: "guild.sync", payload: fresh }] });
    await outage(25 * HOUR);
    for (const event of stale) expect((await postInternal({ events: [event] })).status).toBe(200);
    expect(await membersOf([room])).toEqual([]);
  });
});
