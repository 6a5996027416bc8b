import { GatewayIntentBits, type GatewayDispatchPayload } from "discord-api-types/v10";
import { hostname } from "node:os";
import WebSocket from "ws";
import { servedGuildIds, type GatewayConfig } from "./config.js";
import { backoffDelay, type BackoffPolicy } from "../../protocol/backoff.js";
import { gatewayBotFetcher } from "./gateway/gateway-bot.js";
import { IdentifyQueue } from "./gateway/identify-queue.js";
import { GatewayShard, InvalidTokenError, SHARD_DEFAULTS, ShardState, type GatewaySession, type ShardTimings } from "./gateway/shard.js";
import { planShards, type ShardPlan } from "./gateway/sharding.js";
import { GuildPipe } from "./guild-pipe.js";
import { startHealthServer } from "./health.js";
import { healthReport } from "./health-report.js";
import { hubHttpClient, type HubFetch } from "./hub-http.js";
import { HUB_LATENCY_BUCKETS, Histogram } from "./histogram.js";
import { renderMetrics, startEventLoopMonitor, type ShardStats } from "./metrics.js";
import { createLogger, type Logger } from "./log.js";
import { SessionKeeper } from "./session-keeper.js";
import { fileSessionStore, loadStored, memorySessionStore, type SessionStore, type StoredGateway } from "./session-store.js";

export const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildVoiceStates;

export interface ServiceSettings {
  /**
   * How often an idle gateway contacts an edge that grants no lease (the previous release, or one that does not
   * serve the guild), to know it answers.
   */
  hubProbeIntervalMs: number;
  /** While another process holds a guild's lease, ask its hub again at least this often: a holder that stops releases early. */
  standbyPollMs: number;
  outboxMaxEvents: number;
  outboxBatchSize: number;
  /** A batch not full waits this long for more states before it is posted (see HubOutboxOptions). */
  outboxBatchLingerMs: number;
  flushTimeoutMs: number;
  /** SESSION_FILE is written at most this often: a crash replays at most this long's dispatches (harmless). */
  sessionWriteIntervalMs: number;
  /** A shard starts a fresh session for a guild's picture at most this often (each costs a session start). */
  freshSessionMinIntervalMs: number;
  hubBackoff: BackoffPolicy;
  shard: ShardTimings;
}

/** Every default in one place; tests shrink the timings. */
export const SERVICE_DEFAULTS: ServiceSettings = {
  hubProbeIntervalMs: 15_000,
  standbyPollMs: 2_000,
  outboxMaxEvents: 10_000,
  outboxBatchSize: 100,
  outboxBatchLingerMs: 25,
  flushTimeoutMs: 5_000,
  sessionWriteIntervalMs: 1_000,
  freshSessionMinIntervalMs: 60_000,
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
  /** The served guilds on this process's shards, each with its own pipe to its own hub. */
  readonly guilds: ReadonlyMap<string, GuildPipe>;
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

/**
 * Wires the Discord shards, one pipe per served guild (its outbox to its hub), the session file and the health
 * server. The shard count comes from SHARD_COUNT or GET /gateway/bot; each guild rides the shard Discord routes it
 * to, and this process runs the shards of SHARD_IDS (all by default).
 */
export async function startGatewayService(config: GatewayConfig, overrides: Partial<GatewayServiceDeps> = {}): Promise<GatewayService> {
  const log = overrides.log ?? createLogger(config.LOG_LEVEL);
  const fetchImpl = overrides.fetch ?? fetch;
  // The hubs' client: fetch when a test injects one, keep-alive node:http(s) otherwise (see hubHttpClient).
  const hubClient = overrides.fetch ? undefined : hubHttpClient();
  const hubFetch: HubFetch = hubClient?.fetch ?? fetchImpl;
  const random = overrides.random ?? Math.random;
  const sleep = overrides.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = overrides.now ?? Date.now;
  const settings = { ...SERVICE_DEFAULTS, ...overrides.settings, shard: { ...SERVICE_DEFAULTS.shard, ...overrides.settings?.shard } };
  const store = overrides.sessionStore ?? (config.SESSION_FILE ? fileSessionStore(config.SESSION_FILE, log) : memorySessionStore());
  const served = servedGuildIds(config);

  const stored = loadStored(store, config.SESSION_FILE, config.PRIMARY_GUILD_ID, () => newInstanceId(random), log);
  // This process as its guilds' hubs know it: the same instance after a restart on this host (SESSION_FILE), so a
  // restart that resumes its Discord sessions keeps its lease terms; another host is another instance.
  const gateway = { instance: stored?.instance ?? newInstanceId(random), epoch: now() };
  const latency = new Histogram(HUB_LATENCY_BUCKETS);
  const identifyQueue = new IdentifyQueue(1, settings.shard.identifySpacingMs, { now, sleep });
  const fetchGatewayBot = gatewayBotFetcher(config.DISCORD_API_BASE, config.DISCORD_BOT_TOKEN, fetchImpl, identifyQueue);
  const shards = new Map<number, GatewayShard>();
  const shardStats = new Map<number, ShardStats>();
  const pipes = new Map<string, GuildPipe>();
  let keeper: SessionKeeper | undefined;
  let stopped = false;

  let resolveFatal!: (value: { code: number; why: string }) => void;
  const fatal = new Promise<{ code: number; why: string }>((resolve) => (resolveFatal = resolve));

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

  /** Fresh sessions a guild's picture needs, at most one per shard per freshSessionMinIntervalMs. */
  const freshSessions = new Map<number, { at: number; timer?: ReturnType<typeof setTimeout> }>();
  function freshSession(shardId: number, reason: string): void {
    const last = freshSessions.get(shardId);
    if (last?.timer) return; // one is scheduled already
    const wait = last ? Math.max(0, last.at + settings.freshSessionMinIntervalMs - now()) : 0;
    const start = () => {
      freshSessions.set(shardId, { at: now() });
      if (!stopped) shards.get(shardId)?.freshSession(reason);
    };
    if (wait === 0) return start();
    log("warn", "a guild needs a fresh Discord session; waiting for the shard's next allowed one", { shard: shardId, waitMs: wait, reason });
    const timer = setTimeout(start, wait);
    timer.unref?.();
    freshSessions.set(shardId, { at: last!.at, timer });
  }

  function startShards(plan: ShardPlan): void {
    const sameCount = stored?.shardCount === plan.count;
    if (stored && !sameCount) log("info", "the shard count changed since the session file was written; identifying anew", { stored: stored.shardCount, count: plan.count });
    const pipesByShard = new Map<number, GuildPipe[]>(plan.ids.map((id) => [id, []]));
    for (const [guildId, shardId] of plan.guilds) {
      const pipe = new GuildPipe({
        guildId,
        shardId,
        configuredAs: guildId === config.PRIMARY_GUILD_ID ? "PRIMARY_GUILD_ID" : "ALLOWED_GUILD_IDS",
        stored: sameCount ? stored?.guilds[guildId] : undefined,
        session: () => shards.get(shardId)?.session,
        replaying: () => shards.get(shardId)?.state === ShardState.Resuming,
        freshSession: (reason) => freshSession(shardId, reason),
        changed: () => keeper?.changed(),
        changedNow: () => keeper?.flush(),
        log,
        outbox: {
          guildId,
          endpoint: config.HUB_ENDPOINT,
          secret: config.HUB_SECRET,
          maxEvents: settings.outboxMaxEvents,
          batchSize: settings.outboxBatchSize,
          batchLingerMs: settings.outboxBatchLingerMs,
          backoff: settings.hubBackoff,
          fetch: hubFetch,
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
      pipes.set(guildId, pipe);
      pipesByShard.get(shardId)!.push(pipe);
    }
    const missing = served.filter((guildId) => !plan.guilds.has(guildId));
    log("info", "shard plan", { shardCount: plan.count, shards: plan.ids, guilds: Object.fromEntries(plan.guilds), onOtherProcesses: missing });
    if (plan.guilds.size === 0) log("warn", "none of the served guilds is on this process's shards (SHARD_IDS): it delivers nothing", { shards: plan.ids });

    const resumed: Record<string, GatewaySession> = {};
    for (const id of plan.ids) {
      const stats: ShardStats = { dispatches: 0, lastAckLatencyMs: 0 };
      shardStats.set(id, stats);
      const shardLog: Logger = (level, msg, fields) => log(level, msg, { shard: id, ...fields });
      const onShard = pipesByShard.get(id)!;
      const session = sameCount ? resumable(stored!, id, onShard, shardLog) : undefined;
      if (session) {
        resumed[String(id)] = session;
        for (const pipe of onShard) pipe.resumeFrom({ sessionId: session.sessionId, seq: session.seq });
        shardLog("info", "resuming the stored Discord session", { sessionId: session.sessionId, seq: session.seq });
      }
      const shard = new GatewayShard(
        { token: config.DISCORD_BOT_TOKEN, intents: INTENTS, shard: [id, plan.count], gatewayUrlOverride: config.DISCORD_GATEWAY_URL, session },
        {
          dispatch: (payload: GatewayDispatchPayload, current: GatewaySession) => {
            stats.dispatches++;
            for (const pipe of onShard) pipe.onDispatch(payload, current);
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
    keeper = new SessionKeeper({
      store,
      instance: gateway.instance,
      shardCount: plan.count,
      shards: new Map(plan.ids.map((id) => [id, { get session() { return shards.get(id)!.session; }, pipes: pipesByShard.get(id)! }])),
      stored: resumed,
      writeIntervalMs: settings.sessionWriteIntervalMs,
      log,
    });
    keeper.flush(); // the instance and the guilds, before anything is delivered
    for (const shard of shards.values()) shard.start();
    // Every guild is held from the start, a quiet one too (a resumed session may carry nothing for it for hours).
    for (const pipe of pipes.values()) pipe.outbox.claim();
  }

  const summary: DeliverySummary = {
    get depth() {
      return sum([...pipes.values()].map((pipe) => pipe.outbox.depth));
    },
    get stats() {
      const list = [...pipes.values()].map((pipe) => pipe.outbox.stats);
      return {
        delivered: sum(list.map((s) => s.delivered)),
        dropped: sum(list.map((s) => s.dropped)),
        failures: sum(list.map((s) => s.failures)),
        hubReachable: list.every((s) => s.hubReachable),
      };
    },
    stop: () => pipes.forEach((pipe) => pipe.outbox.stop()),
  };

  const firstShard = () => shards.get(Math.min(...shards.keys()));
  const eventLoop = startEventLoopMonitor();
  const counters = () => ({ sessionFileOk: keeper?.ok ?? 1, sessionFileWrites: keeper?.writes ?? 0 });
  const metricsText = () => renderMetrics({ shards, shardStats, pipes: [...pipes.values()], latency, counters: counters(), eventLoop });
  const report = () => healthReport({ shards, pipes: [...pipes.values()], primaryGuildId: config.PRIMARY_GUILD_ID, instance: gateway.instance, sessionFileOk: (keeper?.ok ?? 1) === 1 });
  const health = await startHealthServer(config.HEALTH_PORT, report, metricsText).catch((error: unknown) => {
    eventLoop.stop();
    throw error;
  });
  const planned = shardCount().then((count) => {
    if (count === undefined || stopped) return undefined;
    const plan = planShards(count, config.SHARD_IDS, served);
    startShards(plan);
    return plan;
  });

  const standDown = () => {
    stopped = true;
    for (const { timer } of freshSessions.values()) clearTimeout(timer);
    summary.stop();
    eventLoop.stop();
    hubClient?.close();
  };

  return {
    healthPort: health.port,
    get shard() {
      const shard = firstShard();
      if (!shard) throw new Error("no shard yet: the shard count is not known (await `planned`)");
      return shard;
    },
    shards,
    guilds: pipes,
    outbox: summary,
    planned,
    fatal,
    metricsText,
    async stop() {
      stopped = true;
      // Stop reading dispatches; close with 4000 so every session stays resumable.
      await Promise.all([...shards.values()].map((shard) => shard.shutdown()));
      const flushed = await Promise.all([...pipes.values()].map((pipe) => pipe.outbox.flush(settings.flushTimeoutMs)));
      keeper?.flush(); // the positions the flush reached
      keeper?.stop();
      // Delivered: give each guild back, so a successor (a rolling deploy's new process) takes over at once.
      await Promise.all([...pipes.values()].map((pipe) => pipe.outbox.release()));
      standDown();
      await health.close();
      return { flushed: flushed.every(Boolean) };
    },
    async abort() {
      keeper?.stop();
      for (const shard of shards.values()) shard.destroy();
      standDown();
      await health.close();
    },
  };
}

/**
 * The stored session a shard may RESUME, if any. A resumed session carries no READY and no GUILD_CREATE, so a shard
 * with a guild the file does not know (newly served) or one owed a picture IDENTIFYs instead.
 */
function resumable(stored: StoredGateway, shardId: number, pipes: GuildPipe[], log: Logger): GatewaySession | undefined {
  const session = stored.shards[String(shardId)];
  if (!session) return undefined;
  const owing = pipes.filter((pipe) => pipe.syncOwed).map((pipe) => pipe.guildId);
  if (owing.length === 0) return session;
  log("info", "identifying instead of resuming: a resumed session would not carry the pictures these guilds are owed", { guilds: owing });
  return undefined;
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

/** A name for this process the hubs can tell apart from any other: the host, and a random part. */
function newInstanceId(random: () => number): string {
  const suffix = Math.floor(random() * 36 ** 8).toString(36).padStart(8, "0");
  return `${hostname().slice(0, 40)}-${suffix}`;
}
