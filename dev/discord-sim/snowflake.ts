const DISCORD_EPOCH = 1_420_070_400_000n;
let increment = 0n;

/** A Discord-shaped snowflake: milliseconds since 2015 in the top bits, a counter in the low 12. */
export function snowflake(now = Date.now()): string {
  increment = (increment + 1n) & 0xfffn;
  return String(((BigInt(now) - DISCORD_EPOCH) << 22n) | increment);
}

/** The shard Discord routes a guild to: `(guild_id >> 22) % num_shards`. */
export function shardOfGuild(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}
