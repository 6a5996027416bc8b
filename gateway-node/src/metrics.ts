import { monitorEventLoopDelay } from "node:perf_hooks";
import { ShardState, type GatewayShard } from "./gateway/shard.js";
import type { LeaseState } from "./guild-lease.js";
import type { GuildPipe } from "./guild-pipe.js";
import type { Histogram } from "./histogram.js";

export interface ServiceCounters {
  sessionFileOk: number;
  sessionFileWrites: number;
}

/** What a shard counts besides its connection's own counters. */
export interface ShardStats {
  dispatches: number;
  lastAckLatencyMs: number;
}

export interface MetricsSource {
  shards: ReadonlyMap<number, GatewayShard>;
  shardStats: ReadonlyMap<number, ShardStats>;
  pipes: GuildPipe[];
  latency: Histogram;
  counters: ServiceCounters;
  eventLoop: EventLoopMonitor;
}

/** The event loop's delays since the monitor started, in ms; `stop()` ends the sampling. */
export interface EventLoopMonitor {
  /** The delay at a percentile (0–100). */
  lagMs(percentile: number): number;
  maxLagMs(): number;
  stop(): void;
}

const SAMPLE_INTERVAL_MS = 20;

/** Starts sampling event-loop delay (a 20 ms timer), for the service's lifetime: never as a side effect of an import. */
export function startEventLoopMonitor(): EventLoopMonitor {
  const delay = monitorEventLoopDelay({ resolution: SAMPLE_INTERVAL_MS });
  delay.enable();
  // The histogram records the whole time between two samples, the timer's own interval included: the delay is what
  // lies past it.
  const lag = (ns: number) => Math.max(0, ns / 1e6 - SAMPLE_INTERVAL_MS);
  return { lagMs: (percentile) => lag(delay.percentile(percentile)), maxLagMs: () => lag(delay.max), stop: () => delay.disable() };
}

/**
 * GET /metrics: Prometheus text, in base units (seconds, bytes), counters ending in _total. The unlabelled series
 * are the process's totals (what a one-guild deployment watches); `gateway_shard_*{shard}` and
 * `gateway_guild_*{guild,shard}` break them down.
 */
export function renderMetrics({ shards, shardStats, pipes, latency, counters, eventLoop }: MetricsSource): string {
  const memory = process.memoryUsage();
  const shardList = [...shards.values()];
  const stats = (shard: GatewayShard) => shardStats.get(shard.id) ?? { dispatches: 0, lastAckLatencyMs: 0 };
  const outboxes = pipes.map((pipe) => pipe.outbox);
  const total = (values: number[]) => values.reduce((sum, value) => sum + value, 0);
  const states = Object.values(ShardState);
  const lines = [
    "# HELP gateway_connection_state Shards of this process in each Discord connection state.",
    "# TYPE gateway_connection_state gauge",
    ...states.map((state) => `gateway_connection_state{state="${state}"} ${shardList.filter((shard) => shard.state === state).length}`),
    metric("gateway_dispatches_total", "counter", "Discord dispatches received.", total(shardList.map((shard) => stats(shard).dispatches))),
    metric("gateway_events_queued_total", "counter", "States and pictures queued for the hubs.", total(pipes.map((pipe) => pipe.eventsQueued))),
    metric("gateway_events_delivered_total", "counter", "Events the hubs accepted.", total(outboxes.map((outbox) => outbox.stats.delivered))),
    metric("gateway_events_dropped_total", "counter", "Events dropped: a queue overflowed past compaction (a fresh picture follows), or the hub refused one as invalid.", total(outboxes.map((outbox) => outbox.stats.dropped))),
    metric("gateway_outbox_depth", "gauge", "Events waiting for the hubs.", total(outboxes.map((outbox) => outbox.depth))),
    metric("gateway_hub_failures_total", "counter", "Failed deliveries to the hubs.", total(outboxes.map((outbox) => outbox.stats.failures))),
    latency.render("gateway_hub_request_duration_seconds", "Time from POST to the hub's answer."),
    metric(
      "gateway_hub_last_success_timestamp_seconds",
      "gauge",
      "When a hub last accepted a batch (unix seconds; 0 before the first). Alert when it stops moving while the outbox is not empty.",
      Math.max(0, ...outboxes.map((outbox) => outbox.stats.lastSuccessAt)) / 1000,
    ),
    metric("gateway_reconnects_total", "counter", "Reconnections to Discord.", total(shardList.map((shard) => shard.reconnects))),
    metric("gateway_resumes_total", "counter", "Successful RESUMEs.", total(shardList.map((shard) => shard.resumes))),
    metric("gateway_identifies_total", "counter", "IDENTIFYs sent.", total(shardList.map((shard) => shard.identifies))),
    metric("gateway_heartbeat_ack_latency_seconds", "gauge", "Latency of the slowest shard's last heartbeat ACK.", Math.max(0, ...shardList.map((shard) => stats(shard).lastAckLatencyMs)) / 1000),
    metric("gateway_session_file_ok", "gauge", "0 while the session file cannot be written (a restart would IDENTIFY).", counters.sessionFileOk),
    metric("gateway_session_file_writes_total", "counter", "Session file writes (at most one per sessionWriteIntervalMs, besides those at once for irregular batches and on stop).", counters.sessionFileWrites),
    labelled("gateway_guilds_by_lease_state", "gauge", "Guilds of this process in each lease state (standby: another process holds the guild).", LEASE_STATES.map((state) =>
      [{ state }, pipes.filter((pipe) => pipe.outbox.lease.state.name === state).length] as const,
    )),
    labelled("gateway_shard_connection_state", "gauge", "1 for each shard's current Discord connection state.", shardList.flatMap((shard) =>
      states.map((state) => [{ shard: shard.id, state }, shard.state === state ? 1 : 0] as const),
    )),
    labelled("gateway_shard_dispatches_total", "counter", "Discord dispatches received, per shard.", shardList.map((shard) => [{ shard: shard.id }, stats(shard).dispatches] as const)),
    labelled("gateway_shard_reconnects_total", "counter", "Reconnections to Discord, per shard.", shardList.map((shard) => [{ shard: shard.id }, shard.reconnects] as const)),
    labelled("gateway_shard_resumes_total", "counter", "Successful RESUMEs, per shard.", shardList.map((shard) => [{ shard: shard.id }, shard.resumes] as const)),
    labelled("gateway_shard_identifies_total", "counter", "IDENTIFYs sent, per shard.", shardList.map((shard) => [{ shard: shard.id }, shard.identifies] as const)),
    labelled("gateway_shard_heartbeat_ack_latency_seconds", "gauge", "Latency of each shard's last heartbeat ACK.", shardList.map((shard) => [{ shard: shard.id }, stats(shard).lastAckLatencyMs / 1000] as const)),
    labelled("gateway_guild_available", "gauge", "1 while Discord reports the guild available (0 in an outage, or when the bot is not in it).", pipes.map((pipe) => [guildLabels(pipe), pipe.state === "available" ? 1 : 0] as const)),
    labelled("gateway_guild_lease_state", "gauge", "1 for each guild's lease state on this process.", pipes.flatMap((pipe) =>
      LEASE_STATES.map((state) => [{ ...guildLabels(pipe), state }, pipe.outbox.lease.state.name === state ? 1 : 0] as const),
    )),
    labelled("gateway_guild_lease_term", "gauge", "The lease term this process holds for the guild (0: none).", pipes.map((pipe) => [guildLabels(pipe), pipe.outbox.lease.term ?? 0] as const)),
    labelled("gateway_guild_lease_terms_total", "counter", "Lease terms this process has held for the guild: one more after each takeover.", pipes.map((pipe) => [guildLabels(pipe), pipe.outbox.lease.termsHeld] as const)),
    labelled("gateway_guild_events_queued_total", "counter", "States and pictures queued for the guild's hub.", pipes.map((pipe) => [guildLabels(pipe), pipe.eventsQueued] as const)),
    labelled("gateway_guild_events_delivered_total", "counter", "Events the guild's hub accepted.", pipes.map((pipe) => [guildLabels(pipe), pipe.outbox.stats.delivered] as const)),
    labelled("gateway_guild_events_dropped_total", "counter", "Events dropped for the guild (overflow past compaction, or refused as invalid).", pipes.map((pipe) => [guildLabels(pipe), pipe.outbox.stats.dropped] as const)),
    labelled("gateway_guild_outbox_depth", "gauge", "Events waiting for the guild's hub.", pipes.map((pipe) => [guildLabels(pipe), pipe.outbox.depth] as const)),
    labelled("gateway_guild_hub_failures_total", "counter", "Failed deliveries to the guild's hub.", pipes.map((pipe) => [guildLabels(pipe), pipe.outbox.stats.failures] as const)),
    labelled("gateway_guild_hub_last_success_timestamp_seconds", "gauge", "When the guild's hub last accepted a batch (unix seconds).", pipes.map((pipe) => [guildLabels(pipe), pipe.outbox.stats.lastSuccessAt / 1000] as const)),
    metric("process_resident_memory_bytes", "gauge", "Resident set size.", memory.rss),
    metric("nodejs_heap_used_bytes", "gauge", "V8 heap in use.", memory.heapUsed),
    metric("nodejs_eventloop_lag_p99_seconds", "gauge", "99th percentile event-loop delay since start.", eventLoop.lagMs(99) / 1e3),
    metric("nodejs_eventloop_lag_max_seconds", "gauge", "Largest event-loop delay since start.", eventLoop.maxLagMs() / 1e3),
  ];
  return `${lines.join("\n")}\n`;
}

const LEASE_STATES: ReadonlyArray<LeaseState["name"]> = ["claiming", "holding", "standby", "fenced", "unserved"];

const guildLabels = (pipe: GuildPipe) => ({ guild: pipe.guildId, shard: pipe.shardId });

function metric(name: string, type: "counter" | "gauge", help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}`;
}

/** One series per label set; label values here are ids and state names, never user text, so need no escaping. */
function labelled(name: string, type: "counter" | "gauge", help: string, series: ReadonlyArray<readonly [Record<string, string | number>, number]>): string {
  const rows = series.map(([labels, value]) => `${name}{${Object.entries(labels).map(([key, v]) => `${key}="${v}"`).join(",")}} ${value}`);
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...rows].join("\n");
}
