import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerMessage } from "../../protocol/index.js";
import { advanceClockTo, resetClock } from "../src/clock.js";
import { currentVersion, MIGRATIONS, SCHEMA_VERSION } from "../src/hub/migrations.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { DiscordFake } from "./support/discord-fake.js";
import { FIXTURE_TIME, hubWithStorage, SHIPPED_SCHEMAS } from "./support/hub-storage.js";
import { TestSocket } from "./support/edge.js";
import { mintToken } from "./support/tokens.js";

/**
 * A deploy meets storage written by every schema the repository has shipped: each fixture is one of them with the
 * rows its code wrote. The hub wakes on it with today's code, migrates before serving, and serves it intact.
 */
const ROOM_A = "400000000000900001";
const ROOM_B = "400000000000900002";
const CREATOR = "500000000000900001";
const TAMSIN = "500000000000900011";
const RAVI = "500000000000900012";
const NO_MEDIA = { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false };

let discord: DiscordFake;
beforeEach(() => {
  discord = new DiscordFake();
  discord.install();
});
afterEach(() => vi.restoreAllMocks());
afterAll(() => resetClock());

async function openSocket(stub: ReturnType<typeof env.GUILD_HUB.get>): Promise<TestSocket> {
  const response = await stub.fetch(new Request("https://edge.test/ws", { headers: { Upgrade: "websocket" } }));
  if (!response.webSocket) throw new Error(`no WebSocket in the upgrade response (status ${response.status})`);
  return new TestSocket(response.webSocket);
}

describe("a hub created by an earlier release", () => {
  it("numbers its migrations 1, 2, 3… in order, so each runs once and after the one before", () => {
    expect(MIGRATIONS.map((migration) => migration.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });

  it("keeps serving storage that a later release migrated further (a rollback by one release)", async () => {
    const stub = env.GUILD_HUB.get(env.GUILD_HUB.idFromName("schema-rollback"));
    await stub.ingest(TEST_GUILD_ID, [{ id: "rollback:1", event: "room.created", payload: { guildId: TEST_GUILD_ID, channelId: ROOM_A, name: "Kept", userLimit: 4 } }]);
    await runInDurableObject(stub, (_hub, state) => {
      state.storage.sql.exec("CREATE TABLE later_release (id TEXT PRIMARY KEY)"); // additive, as every step is
      state.storage.sql.exec("INSERT INTO schema_migrations (version, name, at) VALUES (?, 'a later step', 0)", SCHEMA_VERSION + 1);
    });
    await evictDurableObject(stub);
    expect((await stub.snapshot(TEST_GUILD_ID)).rooms.map((room) => room.name)).toEqual(["Kept"]);
    const next = await stub.ingest(TEST_GUILD_ID, [{ id: "rollback:2", event: "voice.joined", payload: { guildId: TEST_GUILD_ID, channelId: ROOM_A, userId: TAMSIN } }]);
    expect(next).toEqual({ kind: "applied", accepted: 1, duplicates: 0 });
  });

  it.each(SHIPPED_SCHEMAS)("upgrades storage shipped at $commit on wake and serves it intact", async (fixture) => {
    const stub = await hubWithStorage(`schema-upgrade-${fixture.commit}`, fixture.sql);
    advanceClockTo(FIXTURE_TIME);

    // The picture, seq and creators the old release recorded.
    const snapshot = await stub.snapshot(TEST_GUILD_ID);
    expect(await runInDurableObject(stub, (_hub, state) => currentVersion(state.storage.sql))).toBe(SCHEMA_VERSION);
    expect(snapshot.seq).toBe(3);
    expect(snapshot.rooms).toEqual([
      {
        channelId: ROOM_A, name: "Friday Commander", userLimit: 4, parentId: null, creatorId: CREATOR,
        members: [{ userId: TAMSIN, username: "Tamsin", media: NO_MEDIA }, { userId: RAVI, username: "Ravi", avatar: "a_0123456789abcdef", media: NO_MEDIA }],
      },
      { channelId: ROOM_B, name: "Draft table", userLimit: 8, parentId: null, members: [] },
    ]);

    // Idempotency keys answer as before, without calling Discord; a rate bucket it emptied stays empty.
    const retried = await stub.createRoom({ guildId: TEST_GUILD_ID, userId: CREATOR, idempotencyKey: "create-1", body: { userLimit: 4 } });
    expect(retried).toEqual({ ok: true, value: { channelId: ROOM_A, name: "Friday Commander", guildId: TEST_GUILD_ID } });
    const another = await stub.createRoom({ guildId: TEST_GUILD_ID, userId: CREATOR, body: { name: "Another", userLimit: 4 } });
    if (fixture.buckets) expect(another).toMatchObject({ ok: false, error: { code: "rate_limited" } });
    else expect(another).toMatchObject({ ok: true });
    expect(discord.calls.filter((call) => call.method === "POST")).toHaveLength(fixture.buckets ? 0 : 1);

    // Event ids it saw are still duplicates; a new event continues the sequence.
    const repeated = await stub.ingest(TEST_GUILD_ID, [{ id: "gw-session:43", event: "voice.left", payload: { guildId: TEST_GUILD_ID, channelId: ROOM_A, userId: RAVI } }]);
    expect(repeated).toEqual({ kind: "applied", accepted: 0, duplicates: 1 });
    const next = await stub.ingest(TEST_GUILD_ID, [{ id: "gw-session:44", event: "voice.joined", payload: { guildId: TEST_GUILD_ID, channelId: ROOM_B, userId: "500000000000900013" } }]);
    expect(next).toEqual({ kind: "applied", accepted: 1, duplicates: 0 });
    const seqAfterWrites = (await stub.snapshot(TEST_GUILD_ID)).seq;
    expect(seqAfterWrites).toBe(fixture.buckets ? 4 : 5); // + the room created above, where it was allowed

    // A member the old release recorded takes flags (kept at once, told when the window ends, see media.test.ts).
    await stub.ingest(TEST_GUILD_ID, [{ id: "gw-new:1", event: "voice.state", payload: { guildId: TEST_GUILD_ID, userId: TAMSIN, channelId: ROOM_A, media: { ...NO_MEDIA, selfVideo: true } } }]);
    const tamsin = (await stub.snapshot(TEST_GUILD_ID)).rooms.find((room) => room.channelId === ROOM_A)!.members.find((m) => m.userId === TAMSIN);
    expect(tamsin).toEqual({ userId: TAMSIN, username: "Tamsin", media: { ...NO_MEDIA, selfVideo: true } });

    // A client resuming from seq 1 gets the old release's envelopes verbatim, then the new ones.
    const socket = await openSocket(stub);
    await socket.auth(await mintToken({ sub: "500000000000900020" }), { since: 1 });
    const replayed = await socket.waitForEvents(seqAfterWrites - 1, "the replay from seq 1");
    expect(replayed.map((event) => event.seq)).toEqual(Array.from({ length: seqAfterWrites - 1 }, (_, i) => i + 2));
    expect(replayed.at(-1)!.ts).toBeGreaterThanOrEqual(FIXTURE_TIME); // written at the hub's (moved) clock
    expect(socket.raw.filter((raw) => raw.includes('"type":"event"')).slice(0, 2)).toEqual(
      fixture.sql.match(/'(\{"v":1,"type":"event".*?"seq":[23]\})'/g)!.map((quoted) => quoted.slice(1, -1)),
    );

    // A multi-part sync the old release stored half of completes with its second part.
    if (fixture.syncPart) {
      const rest = await stub.ingest(TEST_GUILD_ID, [{
        id: "gw-old:7:part1",
        event: "guild.sync",
        payload: { guildId: TEST_GUILD_ID, channels: [], voiceStates: [{ userId: RAVI, channelId: ROOM_B, username: "Ravi" }], part: { syncId: "gw-old:7", index: 1, count: 2 } },
      }]);
      expect(rest).toMatchObject({ kind: "applied" });
      const members = (await stub.snapshot(TEST_GUILD_ID)).rooms.map((room) => [room.channelId, room.members.map((m) => m.userId)]);
      expect(members).toEqual([[ROOM_A, [TAMSIN]], [ROOM_B, [RAVI]]]);
      await socket.waitFor((message: ServerMessage) => message.type === "event" && message.event === "voice.left", "Ravi leaving room A by the sync");
    }
    socket.ws.close(1000);
  });
});
