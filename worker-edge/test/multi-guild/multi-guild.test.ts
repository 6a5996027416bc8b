import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SECOND_GUILD_ID, TEST_GUILD_ID } from "../support/bindings.js";
import { DiscordFake } from "../support/discord-fake.js";
import { authed, createRoom, edgeFetch, newChannelId, postInternal, TestSocket } from "../support/edge.js";
import { mintToken } from "../support/tokens.js";

let discord: DiscordFake;
beforeEach(() => {
  discord = new DiscordFake();
  discord.install();
});
afterEach(() => vi.restoreAllMocks());

const bothGuilds = [TEST_GUILD_ID, SECOND_GUILD_ID];

describe("multi-guild mode", () => {
  it("creates the room in the requested guild when the token grants it", async () => {
    const response = await createRoom(await mintToken({ guilds: bothGuilds }), { name: "second", guildId: SECOND_GUILD_ID });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ guildId: SECOND_GUILD_ID });
    expect(discord.calls[0]!.path).toBe(`/guilds/${SECOND_GUILD_ID}/channels`);
  });

  it("refuses a guild missing from the token's guilds claim, or not served, with 403", async () => {
    const onlyPrimary = await mintToken({ guilds: [TEST_GUILD_ID] });
    expect((await createRoom(onlyPrimary, { name: "x", guildId: SECOND_GUILD_ID })).status).toBe(403);
    expect((await edgeFetch(`/rooms?guildId=${SECOND_GUILD_ID}`, authed(onlyPrimary))).status).toBe(403);
    const unserved = await edgeFetch("/rooms?guildId=999999999999999999", authed(await mintToken({ guilds: ["999999999999999999"] })));
    expect(unserved.status).toBe(403);
    expect(discord.calls).toHaveLength(0);
  });

  it("keeps each guild's rooms and sequence apart", async () => {
    const token = await mintToken({ guilds: bothGuilds });
    const channelId = newChannelId();
    await postInternal({ events: [{ id: "g2:1", event: "room.created", payload: { guildId: SECOND_GUILD_ID, channelId, name: "Only here", userLimit: 2 } }] });
    const second = await (await edgeFetch(`/rooms?guildId=${SECOND_GUILD_ID}`, authed(token))).json<{ rooms: Array<{ channelId: string }> }>();
    const primary = await (await edgeFetch("/rooms", authed(token))).json<{ rooms: Array<{ channelId: string }> }>();
    expect(second.rooms.map((r) => r.channelId)).toContain(channelId);
    expect(primary.rooms.map((r) => r.channelId)).not.toContain(channelId);
  });

  it("closes a socket 4403 when its token does not grant the guild, or the guild is not served", async () => {
    const socket = await TestSocket.open(`?guildId=${SECOND_GUILD_ID}`);
    socket.send({ type: "auth", token: await mintToken({ guilds: [TEST_GUILD_ID] }) });
    expect((await socket.waitForClose()).code).toBe(4403);
    const unserved = await TestSocket.open("?guildId=999999999999999999");
    expect((await unserved.waitForClose()).code).toBe(4403);
    const granted = await TestSocket.open(`?guildId=${SECOND_GUILD_ID}`);
    await granted.auth(await mintToken({ guilds: bothGuilds }));
    expect(granted.messages[0]).toMatchObject({ guildId: SECOND_GUILD_ID });
  });
});

describe("ROOM_IDLE_TTL_SECONDS", () => {
  it("ends a room this service created once it has been empty for the TTL", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ guilds: bothGuilds }));
    const response = await createRoom(await mintToken({ guilds: bothGuilds }), { name: "short-lived" });
    const { channelId } = await response.json<{ channelId: string }>();
    const deleted = await socket.waitFor((m) => m.type === "event" && m.event === "room.deleted", "room.deleted by idle TTL", 6_000);
    expect(deleted).toMatchObject({ payload: { channelId } });
    expect(discord.channels.has(channelId)).toBe(false);
    expect(decodeURIComponent(discord.calls.at(-1)!.auditReason ?? "")).toContain("idle");
  });

  it("leaves rooms it did not create alone", async () => {
    const channelId = newChannelId();
    await postInternal({ events: [{ id: `ext:${channelId}`, event: "room.created", payload: { guildId: TEST_GUILD_ID, channelId, name: "Made in Discord", userLimit: 0 } }] });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const rooms = await (await edgeFetch("/rooms", authed(await mintToken({ guilds: bothGuilds })))).json<{ rooms: Array<{ channelId: string }> }>();
    expect(rooms.rooms.map((r) => r.channelId)).toContain(channelId);
  });
});
