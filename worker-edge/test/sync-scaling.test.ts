import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GuildSyncPayload, MAX_SYNC_VOICE_STATES } from "../../protocol/index.js";
import { TEST_GUILD_ID } from "./support/bindings.js";

/**
 * Applying a guild.sync holds the guild's only thread: its cost must grow with its size, not with its square.
 * Each run is a first sync into a hub of its own (every member new), timed around the call.
 */
let hubCounter = 0;

function firstSync(people: number): GuildSyncPayload {
  const rooms = Array.from({ length: 20 }, (_, i) => String(410000000000000000n + BigInt(i)));
  return {
    guildId: TEST_GUILD_ID,
    channels: rooms.map((channelId, i) => ({ channelId, name: `Table ${i}`, userLimit: 0 })),
    // Most people in one room: the case where counting a room's members per arrival hurts most.
    voiceStates: Array.from({ length: people }, (_, i) => ({
      userId: String(520000000000000000n + BigInt(i)),
      channelId: rooms[i % 10 === 0 ? i % rooms.length : 0]!,
      username: `player ${i}`,
    })),
  };
}

async function applyMs(people: number): Promise<number> {
  const hub = env.GUILD_HUB.get(env.GUILD_HUB.idFromName(`sync-scaling-${++hubCounter}`));
  const sync = firstSync(people);
  await hub.snapshot(TEST_GUILD_ID); // woken and migrated before the clock starts
  const started = performance.now();
  const result = await hub.ingest(TEST_GUILD_ID, [{ id: `scaling:${hubCounter}`, event: "guild.sync", payload: sync }]);
  const elapsed = performance.now() - started;
  expect(result).toEqual({ kind: "applied", accepted: 1, duplicates: 0 });
  expect((await hub.snapshot(TEST_GUILD_ID)).rooms.flatMap((room) => room.members)).toHaveLength(people);
  return elapsed;
}

describe("applying a large guild.sync", () => {
  it("takes time linear in its voice states (4× the states, well under 16×)", async () => {
    const small = 4_000;
    const large = 4 * small;
    // The fastest of three runs of each: load on a shared machine only ever adds time.
    const times = { small: Infinity, large: Infinity };
    for (let run = 0; run < 3; run++) {
      times.small = Math.min(times.small, await applyMs(small));
      times.large = Math.min(times.large, await applyMs(large));
    }
    const ratio = times.large / times.small;
    console.log(JSON.stringify({ msg: "sync apply scaling", smallMs: times.small, largeMs: times.large, ratio }));
    // Linear is 4×; quadratic (a scan of the members per arrival) is near 16×.
    expect(ratio).toBeLessThan(7);
  }, 120_000);

  it("accepts a sync up to the protocol's bound and refuses a larger one", () => {
    const states = (n: number) => ({ ...firstSync(0), voiceStates: firstSync(n).voiceStates });
    expect(GuildSyncPayload.safeParse(states(MAX_SYNC_VOICE_STATES)).success).toBe(true);
    expect(GuildSyncPayload.safeParse(states(MAX_SYNC_VOICE_STATES + 1)).success).toBe(false);
  });
});
