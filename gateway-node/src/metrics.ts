import { monitorEventLoopDelay } from "node:perf_hooks";
import { ShardState, type GatewayShard } from "./gateway/shard.js";
import type { HubOutbox } from "./hub-outbox.js";

/** A Prometheus histogram with fixed buckets (seconds). */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    this.buckets.forEach((le, i) => {
      if (seconds <= le) this.counts[i]!++;
    });
  }

  render(name: string, help: string): string {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    this.buckets.forEach((le, i) => lines.push(`${name}_bucket{le="${le}"} ${this.counts[i]}`));
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines.join("\n");
  }
}

/** Request latencies to the hub: a few ms on a good day, seconds when it is struggling. */
export const HUB_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export interface ServiceCounters {
  dispatches: number;
  eventsQueued: number;
  lastAckLatencyMs: number;
  superseded: number;
  sessionFileOk: number;
}

const eventLoopDelay = monitorEventLoopDelay({ resolution: 20 });
eventLoopDelay.enable();

/** GET /metrics: Prometheus text, in base units (seconds, bytes), counters ending in _total. */
export function renderMetrics(shard: GatewayShard, outbox: HubOutbox, counters: ServiceCounters): string {
  const memory = process.memoryUsage();
  const lines = [
    "# HELP gateway_connection_state 1 for the current Discord connection state.",
    "# TYPE gateway_connection_state gauge",
    ...Object.values(ShardState).map((state) => `gateway_connection_state{state="${state}"} ${shard.state === state ? 1 : 0}`),
    metric("gateway_dispatches_total", "counter", "Discord dispatches received.", counters.dispatches),
    metric("gateway_events_queued_total", "counter", "App events queued for the hub.", counters.eventsQueued),
    metric("gateway_events_delivered_total", "counter", "Events the hub accepted.", outbox.stats.delivered),
    metric("gateway_events_dropped_total", "counter", "Events dropped by overflow or refused as invalid (a guild.sync follows).", outbox.stats.dropped),
    metric("gateway_outbox_depth", "gauge", "Events waiting for the hub.", outbox.depth),
    metric("gateway_hub_failures_total", "counter", "Failed deliveries to the hub.", outbox.stats.failures),
    outbox.latency.render("gateway_hub_request_duration_seconds", "Time from POST to the hub's answer."),
    metric(
      "gateway_hub_last_success_timestamp_seconds",
      "gauge",
      "When the hub last accepted a batch (unix seconds; 0 before the first). Alert when it stops moving while the outbox is not empty.",
      outbox.stats.lastSuccessAt / 1000,
    ),
    metric("gateway_reconnects_total", "counter", "Reconnections to Discord.", shard.reconnects),
    metric("gateway_resumes_total", "counter", "Successful RESUMEs.", shard.resumes),
    metric("gateway_identifies_total", "counter", "IDENTIFYs sent.", shard.identifies),
    metric("gateway_heartbeat_ack_latency_seconds", "gauge", "Latency of the last heartbeat ACK.", counters.lastAckLatencyMs / 1000),
    metric("gateway_session_file_ok", "gauge", "0 while the session file cannot be written (a restart would IDENTIFY).", counters.sessionFileOk),
    metric("gateway_superseded", "gauge", "1 when the hub follows a newer gateway process and this one stood down.", counters.superseded),
    metric("process_resident_memory_bytes", "gauge", "Resident set size.", memory.rss),
    metric("nodejs_heap_used_bytes", "gauge", "V8 heap in use.", memory.heapUsed),
    metric("nodejs_eventloop_lag_p99_seconds", "gauge", "99th percentile event-loop delay since start.", eventLoopDelay.percentile(99) / 1e9),
    metric("nodejs_eventloop_lag_max_seconds", "gauge", "Largest event-loop delay since start.", eventLoopDelay.max / 1e9),
  ];
  return `${lines.join("\n")}\n`;
}

function metric(name: string, type: "counter" | "gauge", help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}`;
}
