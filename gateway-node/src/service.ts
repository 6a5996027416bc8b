import { GatewayIntentBits, type GatewayDispatchPayload } from "discord-api-types/v10";
import WebSocket from "ws";
import type { GatewayConfig } from "./config.js";
import { type BackoffPolicy } from "../../protocol/backoff.js";
import { GatewayShard, InvalidTokenError, SHARD_DEFAULTS, ShardState, type GatewayBotInfo, type GatewaySession, type ShardTimings } from "./gateway/shard.js";
import { GuildView } from "./guild-view.js";
import { startHealthServer } from "./health.js";
import { renderMetrics } from "./metrics.js";
import { HubOutbox, syncEvents, type DeliveredEvent, type OutboxEvent } from "./hub-outbox.js";
import { createLogger, type Logger } from "./log.js";
import { fileSessionStore, memorySessionStore, type SessionStore } from "./session-store.js";

export const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildVoiceStates;

export interface ServiceSettings {
  /** How often an idle gateway checks that the hub answers (its /health). */
  hubProbeIntervalMs: number;
  outboxMaxEvents: number;
  outboxBatchSize: number;
  flushTimeoutMs: number;
  hubBackoff: BackoffPolicy;
  shard: ShardTimings;
}

/** Every default in one place; tests shrink the timings. */
export const SERVICE_DEFAULTS: ServiceSettings = {
  hubProbeIntervalMs: 15_000,
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

export interface GatewayService {
  readonly healthPort: number;
  readonly shard: GatewayShard;
  readonly outbox: HubOutbox;
  /** Resolves with the close code and reason when Discord refuses the bot for good. */
  readonly fatal: Promise<{ code: number; why: string }>;
  metricsText(): string;
  stop(): Promise<{ flushed: boolean }>;
  /** Stops at once, as a killed process would: no close frame, no flush, nothing more written. */
  abort(): Promise<void>;
}

/** Wires the Discord session, the guild picture, the hub outbox, the session file and the health server. */
export async function startGatewayService(config: GatewayConfig, overrides: Partial<GatewayServiceDeps> = {}): Promise<GatewayService> {
  const log = overrides.log ?? createLogger(config.LOG_LEVEL);
  const fetchImpl = overrides.fetch ?? fetch;
  const random = overrides.random ?? Math.random;
  const sleep = overrides.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = overrides.now ?? Date.now;
  const settings = { ...SERVICE_DEFAULTS, ...overrides.settings, shard: { ...SERVICE_DEFAULTS.shard, ...overrides.settings?.shard } };
  const store = overrides.sessionStore ?? (config.SESSION_FILE ? fileSessionStore(config.SESSION_FILE) : memorySessionStore());
  const guildId = config.PRIMARY_GUILD_ID;

  const stored = store.load();
  let view = stored ? GuildView.from(guildId, stored.view) : new GuildView(guildId);
  // The picture as the hub has accepted it, kept from the events it accepted: what a restarted process resumes from.
  const committedView = stored ? GuildView.from(guildId, stored.view) : new GuildView(guildId);
  const counters = { dispatches: 0, eventsQueued: 0, lastAckLatencyMs: 0, superseded: 0, sessionFileOk: 1 };
  /** Whether the bot is in the guild, as Discord last said: READY's guild list, GUILD_CREATE and GUILD_DELETE. */
  let guildState: "unknown" | "available" | "unavailable" | "not a member" | "removed" = "unknown";
  // This process's claim on the guild's hub: a later start wins, so a rolling deploy's old process stands down.
  const lease = { epoch: now(), instance: random().toString(36).slice(2, 12) || "gateway" };

  const outbox = new HubOutbox({
    endpoint: config.HUB_ENDPOINT,
    secret: config.HUB_SECRET,
    maxEvents: settings.outboxMaxEvents,
    batchSize: settings.outboxBatchSize,
    backoff: settings.hubBackoff,
    fetch: fetchImpl,
    random,
    sleep,
    log,
    // A picture taken while the view still waits for a GUILD_CREATE is not the guild's: it settles nothing.
    currentSync: () => ({ payload: view.sync(), sessionId: shard.session?.sessionId, seq: shard.session?.seq, settles: !view.awaitingGuild }),
    delivered: (events) => events.forEach(applyDelivered),
    committed: (sessionId, seq) => commit(sessionId, seq),
    lease,
    superseded: () => standDown(),
  });

  /** Another gateway process serves the guild now: leave Discord and stay idle (exiting would restart and fight it). */
  function standDown(): void {
    counters.superseded = 1;
    void shard.shutdown();
  }

  /**
   * Since when the hub is owed a fresh picture: a new session's READY or an outage's GUILD_DELETE arms it, and only a
   * whole picture taken after that settles it (an older sync still in flight does not). Saved with the session, so a
   * restart in between syncs again.
   */
  let syncOwedSince = stored?.view.syncDue ? { sessionId: stored.sessionId, seq: stored.seq } : undefined;

  function applyDelivered({ event, origin, settles }: DeliveredEvent): void {
    committedView.apply(event);
    if (event.event !== "guild.sync" || !settles || !origin || !syncOwedSince) return;
    const part = event.payload.part;
    const whole = !part || part.index === part.count - 1;
    if (whole && origin.sessionId === syncOwedSince.sessionId && origin.seq > syncOwedSince.seq) syncOwedSince = undefined;
  }

  let lastCommit = stored ? { sessionId: stored.sessionId, seq: stored.seq } : undefined;
  function commit(sessionId: string, seq: number): void {
    const session = shard.session;
    if (!session || session.sessionId !== sessionId) return; // an older session's tail
    if (lastCommit?.sessionId === sessionId && seq <= lastCommit.seq) return; // never move back
    lastCommit = { sessionId, seq };
    try {
      const view = { ...committedView.export(), syncDue: syncOwedSince !== undefined };
      store.save({ sessionId, seq, resumeGatewayUrl: session.resumeGatewayUrl, view });
      if (!counters.sessionFileOk) log("info", "the session file is writable again");
      counters.sessionFileOk = 1;
    } catch (error) {
      // Delivery goes on; only a restart's RESUME is lost (it will IDENTIFY instead).
      if (counters.sessionFileOk) log("error", "cannot write the session file; running without resume", { error: error instanceof Error ? error.message : String(error) });
      counters.sessionFileOk = 0;
    }
  }

  const fetchGatewayBot = async (): Promise<GatewayBotInfo> => {
    const response = await fetchImpl(`${config.DISCORD_API_BASE}/gateway/bot`, {
      headers: { Authorization: `Bot ${config.DISCORD_BOT_TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (response.status === 401) throw new InvalidTokenError("GET /gateway/bot answered 401");
    if (!response.ok) throw new Error(`GET /gateway/bot answered ${response.status}`);
    const body = (await response.json()) as { url: string; session_start_limit: { remaining: number; reset_after: number } };
    return { url: body.url, sessionStartLimit: { remaining: body.session_start_limit.remaining, resetAfterMs: body.session_start_limit.reset_after } };
  };

  let resolveFatal!: (value: { code: number; why: string }) => void;
  const fatal = new Promise<{ code: number; why: string }>((resolve) => (resolveFatal = resolve));

  const onDispatch = (payload: GatewayDispatchPayload, session: GatewaySession) => {
    counters.dispatches++;
    trackGuild(payload);
    if (payload.t === "READY") {
      // A fresh session: its GUILD_CREATE becomes one guild.sync. Until the hub accepts that sync, a restart must
      // sync again, so the committed picture (still the hub's) carries the promise.
      view = new GuildView(guildId);
      view.expectSync();
      syncOwedSince = { sessionId: session.sessionId, seq: payload.s };
    }
    if (payload.t === "GUILD_DELETE" && payload.d.id === guildId && payload.d.unavailable) {
      // An outage: the GUILD_CREATE that ends it must sync, also after a restart in between.
      syncOwedSince = { sessionId: session.sessionId, seq: payload.s };
    }
    const translation = view.translate(payload);
    const events: OutboxEvent[] =
      translation.kind === "sync"
        ? syncEvents(translation.sync, `${session.sessionId}:${payload.s}`)
        : translation.events.map((event, index, all) => ({ ...event, id: all.length === 1 ? `${session.sessionId}:${payload.s}` : `${session.sessionId}:${payload.s}:${index}` }));
    counters.eventsQueued += events.length;
    outbox.enqueue(events, session.sessionId, payload.s);
  };

  function trackGuild(payload: GatewayDispatchPayload): void {
    const before = guildState;
    if (payload.t === "READY") guildState = payload.d.guilds.some((g) => g.id === guildId) ? "unavailable" : "not a member";
    else if (payload.t === "GUILD_CREATE" && payload.d.id === guildId) guildState = "available";
    else if (payload.t === "GUILD_DELETE" && payload.d.id === guildId) guildState = payload.d.unavailable ? "unavailable" : "removed";
    if (guildState === before) return;
    if (guildState === "not a member" || guildState === "removed") {
      log("error", "the bot is not in PRIMARY_GUILD_ID: invite it to the guild (or fix the id)", { guildId, state: guildState });
    } else {
      log("info", "guild state", { guildId, state: guildState });
    }
  }

  const shard: GatewayShard = new GatewayShard(
    { token: config.DISCORD_BOT_TOKEN, intents: INTENTS, gatewayUrlOverride: config.DISCORD_GATEWAY_URL, session: stored },
    {
      dispatch: onDispatch,
      state: (state) => log("info", "gateway state", { state }),
      fatal: (code, why) => resolveFatal({ code, why }),
      ackLatency: (ms) => void (counters.lastAckLatencyMs = ms),
    },
    { createSocket: overrides.createSocket ?? ((url) => new WebSocket(url)), fetchGatewayBot, random, sleep, now },
    settings.shard,
    log,
  );

  const healthy = () => {
    const ready = shard.state === ShardState.Ready;
    const hubOk = outbox.stats.hubReachable;
    const inGuild = guildState !== "not a member" && guildState !== "removed";
    if (counters.superseded) return { healthy: false, body: { discord: shard.state, hub: "superseded: a newer gateway serves the guild" } };
    const sessionFile = counters.sessionFileOk ? "ok" : "failing";
    const body = { discord: shard.state, guild: guildState, hub: hubOk ? "reachable" : "failing", outboxDepth: outbox.depth, sessionFile };
    return { healthy: ready && hubOk && inGuild, body };
  };
  const metricsText = () => renderMetrics(shard, outbox, counters);
  const health = await startHealthServer(config.HEALTH_PORT, healthy, metricsText);
  if (stored) log("info", "resuming the stored Discord session", { sessionId: stored.sessionId, seq: stored.seq });
  shard.start();
  const prober = setInterval(() => void outbox.probe(), settings.hubProbeIntervalMs);
  prober.unref();

  return {
    healthPort: health.port,
    shard,
    outbox,
    fatal,
    metricsText,
    async stop() {
      clearInterval(prober);
      await shard.shutdown(); // stop reading dispatches; close with 4000 so the session stays resumable
      const flushed = await outbox.flush(settings.flushTimeoutMs);
      outbox.stop();
      await health.close();
      return { flushed };
    },
    async abort() {
      clearInterval(prober);
      shard.destroy();
      outbox.stop();
      await health.close();
    },
  };
}
