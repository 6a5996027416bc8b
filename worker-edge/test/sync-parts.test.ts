import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_INTERNAL_BODY_BYTES, splitGuildSync, type GuildSyncPayload } from "../../protocol/index.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { authed, edgeFetch, hubStub, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
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
