import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { IdentifyQueue } from "../src/gateway/identify-queue.js";
import { planShards, shardOf } from "../src/gateway/sharding.js";

const BASE_ENV = {
  DISCORD_BOT_TOKEN: "token",
  PRIMARY_GUILD_ID: "100000000000000001",
  HUB_ENDPOINT: "https://edge.example.com/internal/events",
  HUB_SECRET: "0123456789abcdef0123",
};

describe("guild → shard routing", () => {
  it("is (guild_id >> 22) % shard_count, exact for ids beyond 2^53", () => {
    // 300000000001 << 22: the shard is the creation timestamp's parity for two shards.
    expect(shardOf("1258291200004194304", 2)).toBe(1);
    expect(shardOf("1258291200000000000", 2)).toBe(0);
    expect(shardOf("1258291200008388608", 3)).toBe(2);
    // 2^63 - 1: Number arithmetic would round this id; BigInt does not.
    expect(shardOf("9223372036854775807", 7)).toBe(Number((9223372036854775807n >> 22n) % 7n));
    expect(shardOf("100000000000000001", 1)).toBe(0);
  });

  it("gives a process only the guilds of its own shards", () => {
    const guilds = ["1258291200000000000", "1258291200004194304", "1258291200008388608"];
    expect(planShards(2, undefined, guilds)).toEqual({ count: 2, ids: [0, 1], guilds: new Map([[guilds[0], 0], [guilds[1], 1], [guilds[2], 0]]) });
    expect(planShards(2, [1], guilds)).toEqual({ count: 2, ids: [1], guilds: new Map([[guilds[1], 1]]) });
  });
});

describe("SHARD_COUNT, SHARD_IDS and ALLOWED_GUILD_IDS", () => {
  it("parses the lists", () => {
    const parsed = parseConfig({ ...BASE_ENV, ALLOWED_GUILD_IDS: " 1258291200004194304,1258291200008388608 ", SHARD_COUNT: "4", SHARD_IDS: "0,2" });
    expect(parsed).toMatchObject({ ok: true, config: { ALLOWED_GUILD_IDS: ["1258291200004194304", "1258291200008388608"], SHARD_COUNT: 4, SHARD_IDS: [0, 2] } });
  });

  it.each([
    [{ SHARD_IDS: "0,1" }, "SHARD_IDS needs SHARD_COUNT"],
    [{ SHARD_COUNT: "2", SHARD_IDS: "0,2" }, "SHARD_IDS must be below SHARD_COUNT"],
    [{ SHARD_COUNT: "2", SHARD_IDS: "zero" }, "SHARD_IDS must be shard numbers"],
    [{ SHARD_COUNT: "0" }, "SHARD_COUNT"],
    [{ ALLOWED_GUILD_IDS: "1258291200004194304,not-a-guild" }, "ALLOWED_GUILD_IDS must be Discord snowflakes"],
  ])("refuses %j", (env, message) => {
    const parsed = parseConfig({ ...BASE_ENV, ...env });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toContain(message);
  });
});

describe("IDENTIFY pacing", () => {
  /** A clock that only moves when someone sleeps: waits are exact and the test takes no time. */
  function fakeClock() {
    const clock = { t: 1_000, sleeps: [] as number[], now: () => clock.t, sleep: async (ms: number) => void (clock.sleeps.push(ms), (clock.t += ms)) };
    return clock;
  }

  it("lets one shard per max_concurrency bucket identify per window, other buckets at once", async () => {
    const clock = fakeClock();
    const queue = new IdentifyQueue(2, 5_000, clock);
    const at: Record<number, number> = {};
    // Each shard notes the time its slot is granted (the moment it would send IDENTIFY).
    await Promise.all([0, 1, 2, 3].map((shard) => queue.take(shard, () => ((at[shard] = clock.t), true))));
    expect(at[0]).toBe(1_000);
    expect(at[1]).toBe(1_000); // bucket 1: side by side with bucket 0
    expect(at[2]! - at[0]!).toBeGreaterThanOrEqual(5_000); // bucket 0 again
    expect(at[3]! - at[1]!).toBeGreaterThanOrEqual(5_000);
  });

  it("follows max_concurrency as GET /gateway/bot reports it", async () => {
    const clock = fakeClock();
    const queue = new IdentifyQueue(1, 5_000, clock);
    expect(queue.bucketOf(3)).toBe(0);
    queue.setMaxConcurrency(16);
    expect(queue.bucketOf(3)).toBe(3);
    queue.setMaxConcurrency(0); // not a valid report: kept as it was
    expect(queue.bucketOf(3)).toBe(3);
  });

  it("never grants more IDENTIFYs than session_start_limit.remaining before reset_after, across shards", async () => {
    const clock = fakeClock();
    const queue = new IdentifyQueue(16, 5_000, clock);
    queue.noteSessionStartLimit(1, 60_000); // two shards both read "1 left"
    const at: Record<number, number> = {};
    await Promise.all([0, 1].map((shard) => queue.take(shard, () => ((at[shard] = clock.t), true))));
    expect(at[0]).toBe(1_000);
    expect(at[1]).toBe(61_000); // another bucket, but the budget waits for its reset
  });

  it("takes nothing for an IDENTIFY that is no longer wanted once its turn comes", async () => {
    const clock = fakeClock();
    const queue = new IdentifyQueue(1, 5_000, clock);
    await queue.take(0);
    expect(await queue.take(0, () => false)).toBe(false);
    const before = clock.t;
    expect(await queue.take(0)).toBe(true);
    expect(clock.t).toBe(before); // the abandoned wait left the slot free
  });
});
