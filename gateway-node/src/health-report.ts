import { ShardState, type GatewayShard } from "./gateway/shard.js";
import type { GuildPipe } from "./guild-pipe.js";
import type { HealthReport } from "./health.js";

export interface HealthSource {
  shards: ReadonlyMap<number, Pick<GatewayShard, "id" | "state">>;
  pipes: readonly GuildPipe[];
  primaryGuildId: string;
  instance: string;
  sessionFileOk: boolean;
}

/**
 * GET /healthz: healthy when every shard is ready, every guild's hub answers and serves the guild, and the bot is
 * in every served guild (an outage is not unhealthy; a guild READY does not list, or one the bot was removed from,
 * is). Each guild either delivers (it holds the lease) or stands by for a live holder on another process: both healthy.
 */
export function healthReport({ shards, pipes, primaryGuildId, instance, sessionFileOk }: HealthSource): HealthReport {
  const all = [...shards.values()];
  const lagging = all.find((shard) => shard.state !== ShardState.Ready);
  const primary = pipes.find((pipe) => pipe.guildId === primaryGuildId) ?? pipes[0];
  const hubOk = pipes.every((pipe) => pipe.outbox.stats.hubReachable);
  const body = {
    discord: all.length === 0 ? "starting" : (lagging ?? all[0]!).state,
    guild: primary?.state ?? "none on this process",
    hub: hubOk ? "reachable" : "failing",
    instance,
    outboxDepth: pipes.reduce((sum, pipe) => sum + pipe.outbox.depth, 0),
    sessionFile: sessionFileOk ? "ok" : "failing",
    shards: Object.fromEntries(all.map((shard) => [shard.id, { state: shard.state, guilds: pipes.filter((pipe) => pipe.shardId === shard.id).length }])),
    guilds: Object.fromEntries(
      pipes.map((pipe) => [
        pipe.guildId,
        {
          shard: pipe.shardId,
          state: pipe.state,
          hub: pipe.outbox.stats.hubReachable ? "reachable" : "failing",
          outboxDepth: pipe.outbox.depth,
          syncOwed: pipe.syncOwed,
          lease: pipe.outbox.lease.report(),
        },
      ]),
    ),
  };
  const served = pipes.every((pipe) => pipe.outbox.lease.state.name !== "unserved");
  return { healthy: all.length > 0 && !lagging && hubOk && served && pipes.every((pipe) => pipe.member), body };
}
