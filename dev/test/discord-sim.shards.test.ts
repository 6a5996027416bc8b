import { GatewayIntentBits } from "discord-api-types/v10";
import { describe, expect, it } from "vitest";
import type { GatewayProbe } from "../discord-sim/probe.js";
import { simulatorFixture } from "./support/simulator-fixture.js";

const TOKEN = "gateway-shards-token";
// (id >> 22) % 2: 0, 1, 0 — two guilds on shard 0, one on shard 1.
const GUILD_A = "1258291200000000000";
const GUILD_B = "1258291200004194304";
const GUILD_C = "1258291200008388608";
const ROOM_A = "110000000000000001";
const ROOM_B = "110000000000000002";
const ROOM_C = "110000000000000003";
const MIRA = "210000000000000001";
const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildVoiceStates;

const { sim, start, open, closed } = simulatorFixture({
  botToken: TOKEN,
  guildId: GUILD_A,
  heartbeatIntervalMs: 1_000,
  identifyIntervalMs: 0,
  channels: [{ id: ROOM_A, name: "A", type: 2 }],
  guilds: [
    { guildId: GUILD_B, channels: [{ id: ROOM_B, name: "B", type: 2 }] },
    { guildId: GUILD_C, channels: [{ id: ROOM_C, name: "C", type: 2 }] },
  ],
  users: [{ id: MIRA, username: "Mira" }],
  recommendedShards: 2,
});

async function identify(shard?: [number, number]): Promise<GatewayProbe> {
  const probe = await open();
  probe.identify(TOKEN, INTENTS, shard ? { shard } : {});
  return probe;
}

const guildCreates = (probe: GatewayProbe) => probe.dispatches("GUILD_CREATE").map((m) => (m.d as { id: string }).id).sort();
const voiceGuilds = (probe: GatewayProbe) => probe.dispatches("VOICE_STATE_UPDATE").map((m) => (m.d as { guild_id: string }).guild_id);

describe("a sharded bot in several guilds", () => {
  it("recommends a shard count and reports max_concurrency in GET /gateway/bot", async () => {
    await start({ recommendedShards: 2, sessionStartLimit: { total: 1000, remaining: 999, resetAfterMs: 60_000, maxConcurrency: 2 } });
    const response = await fetch(`${sim().restBase}/gateway/bot`, { headers: { Authorization: `Bot ${TOKEN}` } });
    expect(await response.json()).toMatchObject({ shards: 2, session_start_limit: { remaining: 999, max_concurrency: 2 } });
  });

  it("gives each shard's session only its own guilds, in READY, GUILD_CREATE and every later event", async () => {
    await start();
    const zero = await identify([0, 2]);
    const one = await identify([1, 2]);
    await sim().waitFor(() => guildCreates(zero).length === 2 && guildCreates(one).length === 1, 2_000, "each shard's GUILD_CREATEs");
    const readyGuilds = (probe: GatewayProbe) => (probe.dispatches("READY")[0]!.d as { guilds: Array<{ id: string }> }).guilds.map((g) => g.id).sort();
    expect(readyGuilds(zero)).toEqual([GUILD_A, GUILD_C]);
    expect(readyGuilds(one)).toEqual([GUILD_B]);
    expect(guildCreates(zero)).toEqual([GUILD_A, GUILD_C]);
    expect(guildCreates(one)).toEqual([GUILD_B]);

    sim().guild(GUILD_B).setVoiceState(MIRA, ROOM_B);
    sim().guild(GUILD_C).setVoiceState(MIRA, ROOM_C);
    await sim().waitFor(() => voiceGuilds(zero).length === 1 && voiceGuilds(one).length === 1, 2_000, "each shard's voice update");
    expect(voiceGuilds(zero)).toEqual([GUILD_C]);
    expect(voiceGuilds(one)).toEqual([GUILD_B]);
    expect(sim().state().sessions.map((s) => s.shard).sort()).toEqual([[0, 2], [1, 2]]);
  });

  it("sends a guild's outage and return only to its shard", async () => {
    await start();
    const zero = await identify([0, 2]);
    const one = await identify([1, 2]);
    await sim().waitFor(() => guildCreates(one).length === 1 && guildCreates(zero).length === 2, 2_000, "GUILD_CREATEs");
    sim().guild(GUILD_B).guildOutage();
    sim().guild(GUILD_B).restoreGuild();
    await sim().waitFor(() => guildCreates(one).length === 2, 2_000, "GUILD_B back on shard 1");
    expect(one.dispatches("GUILD_DELETE").map((m) => m.d)).toEqual([{ id: GUILD_B, unavailable: true }]);
    expect(zero.dispatches("GUILD_DELETE")).toEqual([]);
    expect(guildCreates(zero)).toEqual([GUILD_A, GUILD_C]);
  });

  it("closes 4011 when one session would carry more guilds than a shard may, and 4010 for a shard outside the count", async () => {
    await start({ maxGuildsPerShard: 2 });
    const unsharded = await identify();
    expect(await closed(unsharded, "sharding required")).toBe(4011);
    const invalid = await identify([2, 2]);
    expect(await closed(invalid, "invalid shard")).toBe(4010);
    const sharded = await identify([0, 2]);
    await sim().waitFor(() => sharded.dispatches("READY").length === 1, 2_000, "READY for a shard within the limit");
    expect(sim().state().identifies.map((i) => i.outcome)).toEqual(["sharding required", "invalid shard", "ready"]);
  });

  it("lets shards of different max_concurrency buckets identify together, and refuses a second IDENTIFY in one bucket's window", async () => {
    await start({ recommendedShards: 4, identifyIntervalMs: 5_000, sessionStartLimit: { total: 1000, remaining: 1000, resetAfterMs: 60_000, maxConcurrency: 2 } });
    const zero = await identify([0, 4]);
    const one = await identify([1, 4]);
    await sim().waitFor(() => zero.dispatches("READY").length === 1 && one.dispatches("READY").length === 1, 2_000, "READY in buckets 0 and 1");
    const two = await identify([2, 4]); // bucket 0 again, inside its window
    await sim().waitFor(() => two.find(9), 2_000, "op 9 for bucket 0's second IDENTIFY");
    expect(two.find(9)!.d).toBe(false);
    expect(sim().state().identifies.map(({ shard, bucket, outcome }) => ({ shard: shard[0], bucket, outcome }))).toEqual([
      { shard: 0, bucket: 0, outcome: "ready" },
      { shard: 1, bucket: 1, outcome: "ready" },
      { shard: 2, bucket: 0, outcome: "too soon" },
    ]);
  });
});
