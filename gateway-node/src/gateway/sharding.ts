/** Discord's routing of a guild to a shard: `(guild_id >> 22) % shard_count`, the creation timestamp's bits. */
export function shardOf(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

export interface ShardPlan {
  count: number;
  /** The shards this process runs, ascending. */
  ids: number[];
  /** Each served guild's shard, for the guilds on this process's shards only. */
  guilds: Map<string, number>;
}

/**
 * Which shards this process runs and which served guilds they carry. A guild on another process's shard is that
 * process's to serve; a shard of ours with none of the served guilds still connects, so the bot stays online there.
 */
export function planShards(count: number, ownIds: number[] | undefined, servedGuilds: string[]): ShardPlan {
  const ids = [...new Set(ownIds ?? Array.from({ length: count }, (_, id) => id))].sort((a, b) => a - b);
  const own = new Set(ids);
  const guilds = new Map<string, number>();
  for (const guildId of servedGuilds) {
    const shard = shardOf(guildId, count);
    if (own.has(shard)) guilds.set(guildId, shard);
  }
  return { count, ids, guilds };
}
