import { GatewayIntentBits, type GatewayDispatchPayload } from "discord-api-types/v10";
import { hostname } from "node:os";
import WebSocket from "ws";
import { z } from "zod";
import { servedGuildIds, type GatewayConfig } from "./config.js";
import { backoffDelay, type BackoffPolicy } from "../../protocol/backoff.js";
import { IdentifyQueue } from "./gateway/identify-queue.js";
import { GatewayShard, InvalidTokenError, SHARD_DEFAULTS, ShardState, type GatewayBotInfo, type GatewaySession, type ShardTimings } from "./gateway/shard.js";
import { planShards, type ShardPlan } from "./gateway/sharding.js";
import { GuildRelay } from "./guild-relay.js";
import { startHealthServer } from "./health.js";
import { HUB_LATENCY_BUCKETS, Histogram } from "./histogram.js";
import { renderMetrics, startEventLoopMonitor, type ShardStats } from "./metrics.js";
import { createLogger, type Logger } from "./log.js";
import { fileSessionStore, memorySessionStore, migrateLoaded, type SessionStore, type StoredGuild } from "./session-store.js";

export const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildVoiceStates;

export interface ServiceSettings {
  /** How often an idle gateway contacts an edge that grants no lease (the previous release), to know it answers. */
  hubProbeIntervalMs: number;
  /** While another process holds a guild's lease, ask its hub again at least this often: a holder that stops releases early. */
  standbyPollMs: number;
  outboxMaxEvents: number;
  outboxBatchSize: number;
  flushTimeoutMs: number;
  hubBackoff: BackoffPolicy;
  shard: ShardTimings;
}

/** Every default in one place; tests shrink the timings. */
export const SERVICE_DEFAULTS: ServiceSettings = {
  hubProbeIntervalMs: 15_000,
  standbyPollMs: 2_000,
  outboxMaxEvents: 10_000,
  outboxBatchSize: 100,
  flushTimeoutMs: 5_000,
  hubBackoff: { minMs: 250, maxMs: 30_000, factor: 2 },
  shard: SHARD_DEFAULTS,
};

export interface GatewayServiceDeps {
  log: Logger;
  fetch: typeof fetch;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  createSocket: (url: string) => WebSocket;
  sessionStore: SessionStore;
  settings: Partial<Omit<ServiceSettings, "shard">> & { shard?: Partial<ShardTimings> };
}

/** Every guild's outbox at once: what the hubs are still owed. */
export interface DeliverySummary {
  readonly depth: number;
  readonly stats: { delivered: number; dropped: number; failures: number; hubReachable: boolean };
  stop(): void;
}

export interface GatewayService {
  readonly healthPort: number;
  /** The lowest shard this process runs; only there once the shard plan is known (see `planned`). */
  readonly shard: GatewayShard;
  readonly shards: ReadonlyMap<number, GatewayShard>;
  /** The served guilds on this process's shards, each with its own outbox to its own hub. */
  readonly guilds: ReadonlyMap<string, GuildRelay>;
  readonly outbox: DeliverySummary;
  /** The shard count and this process's shards and guilds, once known (undefined when Discord refused the bot first). */
  readonly planned: Promise<ShardPlan | undefined>;
  /** Resolves with the close code and reason when Discord refuses the bot for good. */
  readonly fatal: Promise<{ code: number; why: string }>;
  metricsText(): string;
  stop(): Promise<{ flushed: boolean }>;
  /** Stops at once, as a killed process would: no close frame, no flush, nothing more written. */
  abort(): Promise<void>;
}

const GatewayBotBody = z.object({
  url: z.string().min(1),
  shards: z.number().int().min(1),
  session_start_limit: z.object({
    remaining: z.number().int(),
    reset_after: z.number().min(0),
    max_concurrency: z.number().int().min(1).default(1),
  }),
});

/**
 * Wires the Discord shards, one relay per served guild (its picture and its outbox to its hub), the session file and
 * the health server. The shard count comes from SHARD_COUNT or GET /gateway/bot; each guild rides the shard Discord
 * routes it to, and this process runs the shards of SHARD_IDS (all by default).
 */
export async function startGatewayService(config: GatewayConfig, overrides: Partial<GatewayServiceDeps> = {}): Promise<GatewayService> {
  const log = overrides.log ?? createLogger(config.LOG_LEVEL);
  const fetchImpl = overrides.fetch ?? fetch;
  const random = overrides.random ?? Math.random;
  const sleep = overrides.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = overrides.now ?? Date.now;
  const settings = { ...SERVICE_DEFAULTS, ...overrides.settings, shard: { ...SERVICE_DEFAULTS.shard, ...overrides.settings?.shard } };
  const store = overrides.sessionStore ?? (config.SESSION_FILE ? fileSessionStore(config.SESSION_FILE) : memorySessionStore());
  const served = servedGuildIds(config);

  const stored = migrateLoaded(store.load(), config.PRIMARY_GUILD_ID);
  const counters = { sessionFileOk: 1 };
  // This process as its guilds' hubs know it: the same instance after a restart on this host (SESSION_FILE), so a
  // restart that resumes its Discord sessions keeps its lease terms; another host is another instance.
  const gateway = { instance: stored?.instance ?? newInstanceId(random), epoch: now() };
  const latency = new Histogram(HUB_LATENCY_BUCKETS);
  const identifyQueue = new IdentifyQueue(1, settings.shard.identifySpacingMs, { now, sleep });
  const shards = new Map<number, GatewayShard>();
  const shardStats = new Map<number, ShardStats>();
  const relays = new Map<string, GuildRelay>();
  const relaysByShard = new Map<number, GuildRelay[]>();
  /** Each shard's resumable session as last written: kept while one of its guilds still owes an older session. */
  const storedSessions = new Map<number, GatewaySession>();
  let plan: ShardPlan | undefined;
  let stopped = false;

  let resolveFatal!: (value: { code: number; why: string }) => void;
  const fatal = new Promise<{ code: number; why: string }>((resolve) => (resolveFatal = resolve));

  const fetchGatewayBot = async (): Promise<GatewayBotInfo> => {
    const response = await fetchImpl(`${config.DISCORD_API_BASE}/gateway/bot`, {
      headers: { Authorization: `Bot ${config.DISCORD_BOT_TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (response.status === 401) throw new InvalidTokenError("GET /gateway/bot answered 401");
    if (!response.ok) throw new Error(`GET /gateway/bot answered ${response.status}`);
    const body = GatewayBotBody.parse(await response.json());
    const limit = body.session_start_limit;
    identifyQueue.setMaxConcurrency(limit.max_concurrency);
    identifyQueue.noteSessionStartLimit(limit.remaining, limit.reset_after);
    return {
      url: body.url,
      shards: body.shards,
      sessionStartLimit: { remaining: limit.remaining, resetAfterMs: limit.reset_after, maxConcurrency: limit.max_concurrency },
    };
  };

  /** SHARD_COUNT, or the count Discord recommends (asked until it answers; a rejected token is fatal). */
  async function shardCount(): Promise<number | undefined> {
    if (config.SHARD_COUNT !== undefined) return config.SHARD_COUNT;
    for (let attempt = 0; !stopped; attempt++) {
      try {
        return (await fetchGatewayBot()).shards;
      } catch (error) {
        if (error instanceof InvalidTokenError) {
          log("error", "Discord refused the bot", { code: 4004, why: "the bot token is invalid (Discord REST answered 401)" });
          resolveFatal({ code: 4004, why: "the bot token is invalid (Discord REST answered 401)" });
          return undefined;
        }
        log("warn", "could not fetch the recommended shard count; retrying", { error: error instanceof Error ? error.message : String(error) });
        await sleep(backoffDelay(attempt, settings.shard.backoff, random));
      }
    }
    return undefined;
  }

  /** A shard resumes from its slowest guild: every dispatch up to there is delivered for all of them. */
  function resumablePosition(shardId: number, shard: GatewayShard): GatewaySession | undefined {
    const session = shard.session;
    if (!session) return undefined;
    let seq = session.seq;
    for (const relay of relaysByShard.get(shardId) ?? []) {
      const position = relay.committedPosition;
      if (position?.sessionId !== session.sessionId) return undefined; // a guild still owes an older session
      seq = Math.min(seq, position.seq);
    }
    return { sessionId: session.sessionId, seq, resumeGatewayUrl: session.resumeGatewayUrl };
  }

  /** Writes every shard's session and every guild's accepted picture: called when a guild's delivery moves on. */
  function persist(): void {
    if (!plan) return;
    for (const [id, shard] of shards) {
      const position = resumablePosition(id, shard);
      if (position) storedSessions.set(id, position);
    }
    const guilds: Record<string, StoredGuild> = {};
    for (const [guildId, relay] of relays) {
      const entry = relay.stored() ?? stored?.guilds[guildId];
      if (entry) guilds[guildId] = entry;
    }
    try {
      store.save({ version: 2, instance: gateway.instance, shardCount: plan.count, shards: Object.fromEntries(storedSessions), guilds });
      if (!counters.sessionFileOk) log("info", "the session file is writable again");
      counters.sessionFileOk = 1;
    } catch (error) {
      // Delivery goes on; only a restart's RESUME is lost (it will IDENTIFY instead).
      if (counters.sessionFileOk) log("error", "cannot write the session file; running without resume", { error: error instanceof Error ? error.message : String(error) });
      counters.sessionFileOk = 0;
    }
  }

  function startShards(planned: ShardPlan): void {
    plan = planned;
    const sameCount = stored?.shardCount === planned.count;
    if (stored && !sameCount) log("info", "the shard count changed since the session file was written; identifying anew", { stored: stored.shardCount, count: planned.count });
    for (const id of planned.ids) {
      const session = sameCount ? stored?.shards[String(id)] : undefined;
      if (session) storedSessions.set(id, session);
    }
    for (const [guildId, shardId] of planned.guilds) {
      const relay = new GuildRelay({
        guildId,
        shardId,
        configuredAs: guildId === config.PRIMARY_GUILD_ID ? "PRIMARY_GUILD_ID" : "ALLOWED_GUILD_IDS",
        stored: stored?.guilds[guildId],
        resumingSessionId: storedSessions.get(shardId)?.sessionId,
        session: () => shards.get(shardId)?.session,
        committed: persist,
        log,
        outbox: {
          guildId,
          endpoint: config.HUB_ENDPOINT,
          secret: config.HUB_SECRET,
          maxEvents: settings.outboxMaxEvents,
          batchSize: settings.outboxBatchSize,
          backoff: settings.hubBackoff,
          fetch: fetchImpl,
          random,
          sleep,
          log: (level, msg, fields) => log(level, msg, { guildId, ...fields }),
          gateway,
          standbyPollMs: settings.standbyPollMs,
          idleContactMs: settings.hubProbeIntervalMs,
          now,
          clock: () => performance.now(),
          latency,
        },
      });
      relays.set(guildId, relay);
      relaysByShard.set(shardId, [...(relaysByShard.get(shardId) ?? []), relay]);
    }
    const missing = served.filter((guildId) => !planned.guilds.has(guildId));
    log("info", "shard plan", { shardCount: planned.count, shards: planned.ids, guilds: Object.fromEntries(planned.guilds), onOtherProcesses: missing });
    if (planned.guilds.size === 0) log("warn", "none of the served guilds is on this process's shards (SHARD_IDS): it delivers nothing", { shards: planned.ids });

    for (const id of planned.ids) {
      const stats: ShardStats = { dispatches: 0, lastAckLatencyMs: 0 };
      shardStats.set(id, stats);
      const shardLog: Logger = (level, msg, fields) => log(level, msg, { shard: id, ...fields });
      const onShard = relaysByShard.get(id) ?? [];
      const session = storedSessions.get(id);
      if (session) shardLog("info", "resuming the stored Discord session", { sessionId: session.sessionId, seq: session.seq });
      const shard = new GatewayShard(
        { token: config.DISCORD_BOT_TOKEN, intents: INTENTS, shard: [id, planned.count], gatewayUrlOverride: config.DISCORD_GATEWAY_URL, session },
        {
          dispatch: (payload: GatewayDispatchPayload, current: GatewaySession) => {
            stats.dispatches++;
            for (const relay of onShard) relay.onDispatch(payload, current);
          },
          state: (state) => shardLog("info", "gateway state", { state }),
          fatal: (code, why) => resolveFatal({ code, why }),
          ackLatency: (ms) => void (stats.lastAckLatencyMs = ms),
        },
        { createSocket: overrides.createSocket ?? ((url) => new WebSocket(url)), fetchGatewayBot, identifyQueue, random, sleep, now },
        settings.shard,
        shardLog,
      );
      shards.set(id, shard);
    }
    for (const shard of shards.values()) shard.start();
  }

  /**
   * Healthy when every shard is ready, the bot is in every guild and every guild's hub answers: each guild either
   * delivers (it holds the lease) or stands by for a live holder on another process, which is healthy and idle.
   */
  const healthy = () => {
    const all = [...shards.values()];
    const lagging = all.find((shard) => shard.state !== ShardState.Ready);
    const guildList = [...relays.values()];
    const primary = relays.get(config.PRIMARY_GUILD_ID) ?? guildList[0];
    const hubOk = guildList.every((relay) => relay.outbox.stats.hubReachable);
    const body = {
      discord: all.length === 0 ? "starting" : (lagging ?? all[0]!).state,
      guild: primary?.state ?? "none on this process",
      hub: hubOk ? "reachable" : "failing",
      instance: gateway.instance,
      outboxDepth: summary.depth,
      sessionFile: counters.sessionFileOk ? "ok" : "failing",
      shards: Object.fromEntries(all.map((shard) => [shard.id, { state: shard.state, guilds: relaysByShard.get(shard.id)?.length ?? 0 }])),
      guilds: Object.fromEntries(
        guildList.map((relay) => [
          relay.guildId,
          {
            shard: relay.shardId,
            state: relay.state,
            hub: relay.outbox.stats.hubReachable ? "reachable" : "failing",
            outboxDepth: relay.outbox.depth,
            lease: relay.outbox.lease.report(),
          },
        ]),
      ),
    };
    return { healthy: all.length > 0 && !lagging && hubOk && guildList.every((relay) => relay.member), body };
  };

  const summary: DeliverySummary = {
    get depth() {
      return sum([...relays.values()].map((relay) => relay.outbox.depth));
    },
    get stats() {
      const list = [...relays.values()].map((relay) => relay.outbox.stats);
      return {
        delivered: sum(list.map((s) => s.delivered)),
        dropped: sum(list.map((s) => s.dropped)),
        failures: sum(list.map((s) => s.failures)),
        hubReachable: list.every((s) => s.hubReachable),
      };
    },
    stop: () => relays.forEach((relay) => relay.outbox.stop()),
  };

  const firstShard = () => shards.get(Math.min(...shards.keys()));
  const eventLoop = startEventLoopMonitor();
  const metricsText = () => renderMetrics({ shards, shardStats, relays: [...relays.values()], latency, counters, eventLoop });
  const health = await startHealthServer(config.HEALTH_PORT, healthy, metricsText).catch((error: unknown) => {
    eventLoop.stop();
    throw error;
  });
  const planned = shardCount().then((count) => {
    if (count === undefined || stopped) return undefined;
    const result = planShards(count, config.SHARD_IDS, served);
    startShards(result);
    return result;
  });

  return {
    healthPort: health.port,
    get shard() {
      const shard = firstShard();
      if (!shard) throw new Error("no shard yet: the shard count is not known (await `planned`)");
      return shard;
    },
    shards,
    guilds: relays,
    outbox: summary,
    planned,
    fatal,
    metricsText,
    async stop() {
      stopped = true;
      // Stop reading dispatches; close with 4000 so every session stays resumable.
      await Promise.all([...shards.values()].map((shard) => shard.shutdown()));
      const flushed = await Promise.all([...relays.values()].map((relay) => relay.outbox.flush(settings.flushTimeoutMs)));
      // Delivered: give each guild back, so a successor (a rolling deploy's new process) takes over at once.
      await Promise.all([...relays.values()].map((relay) => relay.outbox.release()));
      summary.stop();
      eventLoop.stop();
      await health.close();
      return { flushed: flushed.every(Boolean) };
    },
    async abort() {
      stopped = true;
      for (const shard of shards.values()) shard.destroy();
      summary.stop();
      eventLoop.stop();
      await health.close();
    },
  };
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

/** A name for this process the hubs can tell apart from any other: the host, and a random part. */
function newInstanceId(random: () => number): string {
  const suffix = Math.floor(random() * 36 ** 8).toString(36).padStart(8, "0");
  return `${hostname().slice(0, 40)}-${suffix}`;
}
