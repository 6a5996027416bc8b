import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TEST_BOT_TOKEN, TEST_GUILD_ID } from "./support/bindings.js";
import { DiscordFake } from "./support/discord-fake.js";
import { authed, createRoom, edgeFetch, hubStub, newUserId } from "./support/edge.js";
import { mintToken } from "./support/tokens.js";

let discord: DiscordFake;
beforeEach(() => {
  discord = new DiscordFake();
  discord.install();
});
afterEach(() => vi.restoreAllMocks());

async function tokenFor(userId = newUserId(), extra: Parameters<typeof mintToken>[0] = {}) {
  return mintToken({ sub: userId, ...extra });
}

describe("POST /create-room validation", () => {
  it.each([
    ["an empty name", { name: "" }],
    ["a 101-character name", { name: "x".repeat(101) }],
    ["userLimit -1", { userLimit: -1 }],
    ["userLimit 100", { userLimit: 100 }],
    ["a fractional userLimit", { userLimit: 2.5 }],
    ["a parentId that is not a snowflake", { parentId: "abc" }],
    ["a parentId that is too short", { parentId: "1234" }],
  ])("rejects %s with 400 and the zod issues", async (_label, body) => {
    const response = await createRoom(await tokenFor(), body);
    expect(response.status).toBe(400);
    const json = await response.json<{ error: string; issues: Array<{ path: string }> }>();
    expect(json.error).toBe("invalid_input");
    expect(json.issues.length).toBeGreaterThan(0);
    expect(discord.calls).toHaveLength(0);
  });

  it.each([
    ["a 100-character name", { name: "y".repeat(100) }, 4],
    ["userLimit 0", { userLimit: 0 }, 0],
    ["userLimit 99", { userLimit: 99 }, 99],
    ["no body fields (defaults)", {}, 4],
  ])("accepts %s", async (_label, body, expectedLimit) => {
    const response = await createRoom(await tokenFor(), body);
    expect(response.status).toBe(201);
    const created = await response.json<{ channelId: string; guildId: string; name: string }>();
    expect(created.guildId).toBe(TEST_GUILD_ID);
    expect(discord.calls[0]!.body).toMatchObject({ type: 2, user_limit: expectedLimit });
  });

  it("rejects a body that is not JSON, and one over 16 KiB with 413", async () => {
    const token = await tokenFor();
    const notJson = await edgeFetch("/create-room", authed(token, { method: "POST", body: "{nope" }));
    expect(notJson.status).toBe(400);
    const huge = await createRoom(token, { name: "x", padding: "z".repeat(20_000) });
    expect(huge.status).toBe(413);
  });

  it("ignores a client-sent guildId in single-guild mode", async () => {
    const response = await createRoom(await tokenFor(), { name: "mine", guildId: "999999999999999999" });
    expect(response.status).toBe(201);
    expect(discord.calls[0]!.path).toBe(`/guilds/${TEST_GUILD_ID}/channels`);
  });

  it("calls Discord with the bot token and an audit-log reason, and never returns the token", async () => {
    const userId = newUserId();
    const response = await createRoom(await tokenFor(userId), { name: "Friday Commander" });
    const text = await response.text();
    expect(text).not.toContain(TEST_BOT_TOKEN);
    expect(discord.calls[0]!.authorization).toBe(`Bot ${TEST_BOT_TOKEN}`);
    expect(decodeURIComponent(discord.calls[0]!.auditReason ?? "")).toContain(userId);
  });
});

describe("idempotency and rate limits", () => {
  it("returns the first result for a retried X-Idempotency-Key and creates nothing more", async () => {
    const token = await tokenFor();
    const first = await createRoom(token, { name: "retry me" }, { "X-Idempotency-Key": "key-1" });
    const second = await createRoom(token, { name: "retry me" }, { "X-Idempotency-Key": "key-1" });
    expect(await second.json()).toEqual(await first.json());
    expect(discord.calls.filter((c) => c.method === "POST")).toHaveLength(1);
  });

  it("creates one channel when two requests with the same key race", async () => {
    const token = await tokenFor();
    let release!: () => void;
    discord.hold = new Promise((resolve) => (release = resolve));
    const racing = [
      createRoom(token, { name: "race" }, { "X-Idempotency-Key": "race-key" }),
      createRoom(token, { name: "race" }, { "X-Idempotency-Key": "race-key" }),
    ];
    await vi.waitFor(() => expect(discord.calls.length).toBeGreaterThan(0), { timeout: 2_000 });
    release();
    const [a, b] = await Promise.all(racing);
    expect(a!.status).toBe(201);
    expect(await b!.json()).toEqual(await a!.json());
    expect(discord.calls.filter((c) => c.method === "POST")).toHaveLength(1);
  });

  it("keeps keys per user: the same key from another user creates another room", async () => {
    const one = await createRoom(await tokenFor(), { name: "a" }, { "X-Idempotency-Key": "shared" });
    const two = await createRoom(await tokenFor(), { name: "b" }, { "X-Idempotency-Key": "shared" });
    expect((await one.json<{ channelId: string }>()).channelId).not.toBe((await two.json<{ channelId: string }>()).channelId);
  });

  it("rejects an idempotency key that is too long", async () => {
    const response = await createRoom(await tokenFor(), { name: "a" }, { "X-Idempotency-Key": "k".repeat(129) });
    expect(response.status).toBe(400);
  });

  it("allows a burst of 5 creates per user, then answers 429 with Retry-After", async () => {
    const token = await tokenFor();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await createRoom(token, { name: `burst ${i}` })).status);
    expect(statuses.slice(0, 5)).toEqual(Array(5).fill(201));
    expect(statuses[5]).toBe(429);
    const limited = await createRoom(token, { name: "again" });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ error: "rate_limited" });
    expect((await createRoom(await tokenFor(), { name: "other user" })).status).toBe(201);
  });

  it("keeps the create limit across an eviction of the guild's hub", async () => {
    const token = await tokenFor();
    for (let i = 0; i < 5; i++) expect((await createRoom(token, { name: `before ${i}` })).status).toBe(201);
    const evictedAt = Date.now();
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    const after = await createRoom(token, { name: "after eviction" });
    // The bucket refills one token every 2 s; an eviction that took that long would hide nothing, so say so.
    expect(Date.now() - evictedAt, "eviction took too long to test the bucket").toBeLessThan(1_500);
    expect(after.status).toBe(429);
  });

  it("caps the live rooms one user has made, whatever the rate", async () => {
    const userId = newUserId();
    await runInDurableObject(hubStub(), (_hub, state) => {
      for (let i = 0; i < 10; i++) {
        state.storage.sql.exec(
          "INSERT INTO rooms (channel_id, name, parent_id, user_limit, creator_id, empty_since) VALUES (?, ?, NULL, 4, ?, NULL)",
          `77000000000000000${i}`, `mine ${i}`, userId,
        );
      }
    });
    const response = await createRoom(await tokenFor(userId), { name: "one more" });
    expect(response.status).toBe(429);
    expect(await response.json()).toMatchObject({ error: "too_many_rooms" });
    expect(discord.calls).toHaveLength(0);
  });

  it("holds the live-room cap against creates sent at the same time", async () => {
    const userId = newUserId();
    await runInDurableObject(hubStub(), (_hub, state) => {
      for (let i = 0; i < 8; i++) {
        state.storage.sql.exec(
          "INSERT INTO rooms (channel_id, name, parent_id, user_limit, creator_id, empty_since) VALUES (?, ?, NULL, 4, ?, NULL)",
          `78000000000000000${i}`, `mine ${i}`, userId,
        );
      }
    });
    const token = await tokenFor(userId);
    let release!: () => void;
    discord.hold = new Promise((resolve) => (release = resolve));
    // Five at once, each inside the create burst: while they wait on Discord none of their rooms exists yet.
    const racing = Array.from({ length: 5 }, (_, i) => createRoom(token, { name: `racing ${i}` }));
    await vi.waitFor(() => expect(discord.calls.length).toBeGreaterThanOrEqual(2), { timeout: 2_000 });
    release();
    const statuses = (await Promise.all(racing)).map((response) => response.status).sort();
    expect(statuses).toEqual([201, 201, 429, 429, 429]);
    expect(discord.calls.filter((c) => c.method === "POST")).toHaveLength(2);
    const after = await (await edgeFetch("/rooms", authed(token))).json<{ rooms: Array<{ creatorId?: string }> }>();
    expect(after.rooms.filter((room) => room.creatorId === userId)).toHaveLength(10);
  });

  it("frees a reserved place when Discord refuses the create", async () => {
    const userId = newUserId();
    await runInDurableObject(hubStub(), (_hub, state) => {
      for (let i = 0; i < 9; i++) {
        state.storage.sql.exec(
          "INSERT INTO rooms (channel_id, name, parent_id, user_limit, creator_id, empty_since) VALUES (?, ?, NULL, 4, ?, NULL)",
          `79000000000000000${i}`, `mine ${i}`, userId,
        );
      }
    });
    const token = await tokenFor(userId);
    discord.script({ status: 500, body: { message: "oops" } });
    expect((await createRoom(token, { name: "fails" })).status).toBe(502);
    expect((await createRoom(token, { name: "the tenth" })).status).toBe(201);
  });
});

describe("Discord failures", () => {
  it("waits out one short 429 and succeeds", async () => {
    discord.script({ status: 429, body: { message: "You are being rate limited.", retry_after: 0.05, global: false } });
    const response = await createRoom(await tokenFor(), { name: "patience" });
    expect(response.status).toBe(201);
    expect(discord.calls.filter((c) => c.method === "POST")).toHaveLength(2);
  });

  it("answers 503 with Retry-After when Discord limits twice or too long", async () => {
    const limited = { status: 429, body: { message: "You are being rate limited.", retry_after: 0.01, global: false } };
    discord.script(limited, limited);
    const twice = await createRoom(await tokenFor(), { name: "x" });
    expect(twice.status).toBe(503);
    expect(twice.headers.get("Retry-After")).toBe("1");
    discord.script({ status: 429, body: { message: "You are being rate limited.", retry_after: 30, global: false } });
    const long = await createRoom(await tokenFor(), { name: "x" });
    expect(long.status).toBe(503);
    expect(long.headers.get("Retry-After")).toBe("30");
  });

  it.each([
    [403, { code: 50013, message: "Missing Permissions" }, "permission"],
    [404, { code: 10004, message: "Unknown Guild" }, "10004"],
    [500, { message: "Internal Server Error: secret-upstream-detail" }, "HTTP 500"],
  ])("maps Discord %i to 502 with a safe message", async (status, body, hint) => {
    discord.script({ status, body });
    const response = await createRoom(await tokenFor(), { name: "x" });
    expect(response.status).toBe(502);
    const json = await response.json<{ error: string; message: string }>();
    expect(json.error).toBe("discord_error");
    expect(json.message).toContain(hint);
    expect(JSON.stringify(json)).not.toContain("secret-upstream-detail");
  });
});

describe("DELETE /end-room/:channelId", () => {
  async function created(userId: string): Promise<string> {
    const response = await createRoom(await tokenFor(userId), { name: "to end" });
    return (await response.json<{ channelId: string }>()).channelId;
  }

  it("lets the creator end their room, which disappears from /rooms", async () => {
    const userId = newUserId();
    const channelId = await created(userId);
    const token = await tokenFor(userId);
    const response = await edgeFetch(`/end-room/${channelId}`, authed(token, { method: "DELETE" }));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
    expect(discord.channels.has(channelId)).toBe(false);
    const rooms = await (await edgeFetch("/rooms", authed(token))).json<{ rooms: Array<{ channelId: string }> }>();
    expect(rooms.rooms.map((r) => r.channelId)).not.toContain(channelId);
  });

  it("refuses another user with 403, but lets an admin end it", async () => {
    const channelId = await created(newUserId());
    const stranger = await edgeFetch(`/end-room/${channelId}`, authed(await tokenFor(), { method: "DELETE" }));
    expect(stranger.status).toBe(403);
    expect(discord.channels.has(channelId)).toBe(true);
    const admin = await edgeFetch(`/end-room/${channelId}`, authed(await tokenFor(newUserId(), { roles: ["admin"] }), { method: "DELETE" }));
    expect(admin.status).toBe(200);
  });

  it("answers 404 for a room it did not create, and 400 for a bad snowflake", async () => {
    const token = await tokenFor();
    expect((await edgeFetch("/end-room/300000000000099999", authed(token, { method: "DELETE" }))).status).toBe(404);
    expect((await edgeFetch("/end-room/not-a-snowflake", authed(token, { method: "DELETE" }))).status).toBe(400);
  });

  it("ends cleanly when Discord already deleted the channel", async () => {
    const userId = newUserId();
    const channelId = await created(userId);
    discord.channels.delete(channelId);
    const response = await edgeFetch(`/end-room/${channelId}`, authed(await tokenFor(userId), { method: "DELETE" }));
    expect(response.status).toBe(200);
  });

  it("keeps the room when Discord fails, and says so with 502", async () => {
    const userId = newUserId();
    const channelId = await created(userId);
    discord.script({ status: 500, body: { message: "boom" } });
    const response = await edgeFetch(`/end-room/${channelId}`, authed(await tokenFor(userId), { method: "DELETE" }));
    expect(response.status).toBe(502);
    const rooms = await (await edgeFetch("/rooms", authed(await tokenFor()))).json<{ rooms: Array<{ channelId: string }> }>();
    expect(rooms.rooms.map((r) => r.channelId)).toContain(channelId);
  });
});
