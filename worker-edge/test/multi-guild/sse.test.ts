import { describe, expect, it } from "vitest";
import { SECOND_GUILD_ID, TEST_GUILD_ID } from "../support/bindings.js";
import { authed, edgeFetch, newChannelId, postInternal } from "../support/edge.js";
import { openStream } from "../support/sse.js";
import { mintToken } from "../support/tokens.js";

describe("GET /events in multi-guild mode", () => {
  it("streams the guild named by ?guildId= when the token grants it, and only that guild's events", async () => {
    const stream = await openStream(`/events?guildId=${SECOND_GUILD_ID}`, await mintToken({ guilds: [TEST_GUILD_ID, SECOND_GUILD_ID] }));
    expect(stream.response.headers.get("X-Guild-Id")).toBe(SECOND_GUILD_ID);
    await stream.waitForFrames(1, "snapshot");
    const [primaryRoom, secondRoom] = [newChannelId(), newChannelId()];
    const created = (guildId: string, channelId: string, id: string) => ({ id, event: "room.created", payload: { guildId, channelId, name: "R", userLimit: 2 } });
    await postInternal({ events: [created(TEST_GUILD_ID, primaryRoom, "sse-mg:1"), created(SECOND_GUILD_ID, secondRoom, "sse-mg:2")] });
    const frames = await stream.waitForFrames(2, "the second guild's room.created");
    expect(JSON.parse(frames[1]!.data)).toMatchObject({ event: "room.created", payload: { guildId: SECOND_GUILD_ID, channelId: secondRoom } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stream.frames).toHaveLength(2);
    await stream.cancel();
  });

  it("refuses with 403 JSON a guild missing from the token's claim, or not served", async () => {
    const onlyPrimary = await mintToken({ guilds: [TEST_GUILD_ID] });
    const missing = await edgeFetch(`/events?guildId=${SECOND_GUILD_ID}`, authed(onlyPrimary));
    expect(missing.status).toBe(403);
    expect(await missing.json()).toMatchObject({ error: "forbidden" });
    const unserved = await edgeFetch("/events?guildId=999999999999999999", authed(await mintToken({ guilds: ["999999999999999999"] })));
    expect(unserved.status).toBe(403);
  });
});
