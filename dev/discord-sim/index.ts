import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ChannelType } from "discord-api-types/v10";
import { BotToken } from "./bot-token.js";
import { handleControl } from "./control.js";
import { SimGateway, type SimClose, type SimIdentify } from "./gateway.js";
import { SimRest, type RestFault } from "./rest.js";
import { DEFAULT_IDENTIFY_INTERVAL_MS, SessionStartBudget, type SessionStartLimit } from "./session-start.js";
import { SimWorld, type ChannelObject, type SimUser, type VoiceFlags, type VoiceStateRecord } from "./world.js";

export type { ChannelObject, RestFault, SessionStartLimit, SimClose, SimIdentify, SimUser, VoiceFlags };

/** A voice state as the simulator reports it: who is in which channel, with every flag. */
export type SimVoiceState = { userId: string; channelId: string } & VoiceFlags;

type ChannelSeed = { id?: string; name: string; type?: 0 | 2 | 4 | 13; parentId?: string | null; userLimit?: number };

/** One structured log line: `{msg, ...fields}`. */
export type SimLogEntry = { msg: string } & Record<string, unknown>;

export interface SimulatorOptions {
  port?: number;
  host?: string;
  botToken: string;
  guildId: string;
  guildName?: string;
  heartbeatIntervalMs?: number;
  sessionStartLimit?: SessionStartLimit;
  identifyIntervalMs?: number;
  channels?: ChannelSeed[];
  /** More guilds the bot is in, besides `guildId`; users are shared by all of them. */
  guilds?: Array<{ guildId: string; guildName?: string; channels?: ChannelSeed[] }>;
  /** The shard count GET /gateway/bot recommends (default 1). */
  recommendedShards?: number;
  /** An IDENTIFY whose shard would carry more guilds than this is closed 4011, sharding required (Discord: 2,500). */
  maxGuildsPerShard?: number;
  users?: SimUser[];
  resumeWindowMs?: number;
  /** Receives what the simulator does (identify, resume, REST writes, faults); silent when absent. */
  log?: (entry: SimLogEntry) => void;
}

export interface SimState {
  channels: ChannelObject[];
  users: SimUser[];
  voiceStates: SimVoiceState[];
  sessions: Array<{ id: string; shard: [number, number]; seq: number; connected: boolean; identifiedAt: number }>;
  /** Every IDENTIFY, its shard, rate-limit bucket and outcome ("too soon" when it broke max_concurrency pacing). */
  identifies: SimIdentify[];
  /** `botMember` false: the bot was removed from the guild (and not invited again). */
  guilds: Array<{ id: string; available: boolean; botMember: boolean }>;
  identifyCount: number;
  resumeCount: number;
  auditLog: Array<{ method: string; path: string; reason: string | null }>;
  sessionStartLimit: { total: number; remaining: number; reset_after: number; max_concurrency: number };
  guildAvailable: boolean;
  /** True once an IDENTIFY over the session start limit got the token reset, as Discord does. */
  tokenRevoked: boolean;
  /** Close codes received, newest last: how each gateway connection ended. */
  closes: SimClose[];
}

/** One guild of the simulated bot: its world, scripted like the primary one. */
export interface SimGuild {
  readonly guildId: string;
  setVoiceState(userId: string, channelId: string | null, flags?: Partial<VoiceFlags>): void;
  createChannel(input: { name: string; type?: 0 | 2 | 13; parentId?: string | null; userLimit?: number }): ChannelObject;
  updateChannel(channelId: string, change: { name?: string; userLimit?: number; parentId?: string | null }): ChannelObject | undefined;
  deleteChannel(channelId: string): void;
  guildOutage(): void;
  removeBot(): void;
  restoreGuild(): void;
  state(): { channels: ChannelObject[]; voiceStates: SimVoiceState[]; available: boolean; botMember: boolean };
}

export interface DiscordSimulator {
  /** A guild the bot is in, by id (the primary one too); throws for a guild the simulator does not hold. */
  guild(guildId: string): SimGuild;
  readonly url: string;
  readonly restBase: string;
  readonly gatewayUrl: string;
  setVoiceState(userId: string, channelId: string | null, flags?: Partial<VoiceFlags>): void;
  addUser(user: SimUser): void;
  /** type 2 is a voice channel (the default), 13 a stage channel, 0 a text channel. */
  createChannel(input: { name: string; type?: 0 | 2 | 13; parentId?: string | null; userLimit?: number }): ChannelObject;
  /** Dispatches CHANNEL_UPDATE with the whole updated channel; undefined for an unknown channel. */
  updateChannel(channelId: string, change: { name?: string; userLimit?: number; parentId?: string | null }): ChannelObject | undefined;
  deleteChannel(channelId: string): void;
  guildOutage(): void;
  /** The bot is kicked from the guild (GUILD_DELETE without `unavailable`). */
  removeBot(): void;
  restoreGuild(): void;
  state(): SimState;
  withholdAcks(on: boolean): void;
  /** Drops the TCP of every gateway connection, or only of the sessions on shard `shardId`. */
  dropConnections(shardId?: number): void;
  stallHandshakes(on: boolean): void;
  requestReconnect(): void;
  invalidateSession(resumable: boolean): void;
  closeConnections(code: number, reason?: string): void;
  breakResumeUrl(on: boolean): void;
  requestHeartbeat(): void;
  scriptRest(fault: RestFault): void;
  readonly received: Array<{ sessionId: string | null; op: number; d: unknown; at: number }>;
  /** Every gateway connection that ended, with the close code the simulator received (1006: no close frame). */
  readonly closes: SimClose[];
  /** Every gateway handshake accepted, by path: /gateway or /gateway-resume. */
  readonly handshakes: Array<{ path: string; at: number }>;
  waitFor<T>(predicate: () => T | undefined | false, timeoutMs?: number, what?: string): Promise<T>;
  close(): Promise<void>;
}

/** Starts the Discord simulator: REST under /api/v10, the gateway at /gateway, the control API under /_sim. */
export async function startDiscordSimulator(options: SimulatorOptions): Promise<DiscordSimulator> {
  const host = options.host ?? "127.0.0.1";
  const worlds = new Map<string, SimWorld>();
  const seeds = [{ guildId: options.guildId, guildName: options.guildName ?? "Simulated Guild", channels: options.channels }, ...(options.guilds ?? [])];
  for (const seed of seeds) {
    if (worlds.has(seed.guildId)) throw new Error(`guild ${seed.guildId} given twice`);
    const world = new SimWorld(seed.guildId, seed.guildName ?? `Simulated Guild ${seed.guildId}`);
    for (const user of options.users ?? []) world.addUser(user);
    for (const channel of seed.channels ?? []) world.createChannel({ ...channel, type: (channel.type ?? ChannelType.GuildVoice) as ChannelType });
    worlds.set(seed.guildId, world);
  }
  const world = worlds.get(options.guildId)!;
  const log = (msg: string, fields: Record<string, unknown> = {}) => options.log?.({ msg, ...fields, guildId: options.guildId });
  const token = new BotToken(options.botToken);
  const budget = new SessionStartBudget(
    options.sessionStartLimit ?? { total: 1000, remaining: 1000, resetAfterMs: 86_400_000, maxConcurrency: 1 },
    options.identifyIntervalMs ?? DEFAULT_IDENTIFY_INTERVAL_MS,
  );
  let base = "";
  const gateway = new SimGateway(worlds, {
    token,
    budget,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
    resumeWindowMs: options.resumeWindowMs ?? 60_000,
    resumeUrl: () => `${base.replace("http", "ws")}/gateway-resume`,
    maxGuildsPerShard: options.maxGuildsPerShard ?? 2_500,
    log,
  });
  const rest = new SimRest(worlds, {
    token,
    budget,
    gatewayUrl: () => `${base.replace("http", "ws")}/gateway`,
    recommendedShards: options.recommendedShards ?? 1,
    log,
  });
  const guildControls = new Map([...worlds].map(([guildId, guildWorld]) => [guildId, guildControl(guildWorld, log)]));

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://sim").pathname;
    const handled = path.startsWith("/api/v10/")
      ? rest.handle(request, response, path.slice("/api/v10".length))
      : path.startsWith("/_sim/")
        ? handleControl(sim, request, response, path)
        : Promise.resolve(void response.writeHead(404).end());
    handled.catch((error: unknown) => {
      log("request failed", { path, error: String(error) });
      if (!response.headersSent) response.writeHead(500).end();
    });
  });
  server.on("upgrade", (request, socket, head) => gateway.handleUpgrade(request, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  base = `http://${host}:${(server.address() as AddressInfo).port}`;

  const sim: DiscordSimulator = {
    url: base,
    restBase: `${base}/api/v10`,
    gatewayUrl: `${base.replace("http", "ws")}/gateway`,
    guild(guildId) {
      const control = guildControls.get(guildId);
      if (!control) throw new Error(`the simulator holds no guild ${guildId}`);
      return control;
    },
    setVoiceState: (userId, channelId, flags) => world.setVoiceState(userId, channelId, flags),
    addUser: (user) => worlds.forEach((guildWorld) => guildWorld.addUser(user)),
    createChannel: (input) => world.createChannel({ ...input, type: (input.type ?? ChannelType.GuildVoice) as ChannelType }),
    updateChannel: (channelId, change) => world.updateChannel(channelId, change),
    deleteChannel: (channelId) => void world.deleteChannel(channelId),
    guildOutage: () => {
      log("guild outage");
      world.guildOutage();
    },
    removeBot: () => {
      log("bot removed from the guild");
      world.removeBot();
    },
    restoreGuild: () => {
      log("guild restored");
      world.restoreGuild();
    },
    state: () => ({
      channels: [...world.channels.values()],
      users: [...world.users.values()],
      voiceStates: [...world.voiceStates.values()].map(voiceStateOf),
      sessions: [...gateway.sessions.values()].map((s) => ({ id: s.id, shard: s.shard, seq: s.seq, connected: s.socket !== undefined, identifiedAt: s.identifiedAt })),
      identifies: [...gateway.identifies],
      guilds: [...worlds.values()].map((guildWorld) => ({ id: guildWorld.guildId, available: guildWorld.available, botMember: guildWorld.botMember })),
      identifyCount: gateway.identifyCount,
      resumeCount: gateway.resumeCount,
      auditLog: rest.auditLog,
      sessionStartLimit: budget.snapshot(),
      guildAvailable: world.available,
      tokenRevoked: token.isRevoked,
      closes: [...gateway.closes],
    }),
    withholdAcks: (on) => {
      log("fault", { action: on ? "withhold-acks" : "release-acks" });
      gateway.acksWithheld = on;
    },
    dropConnections: (shardId) => {
      log("fault", { action: "drop-tcp", ...(shardId !== undefined ? { shard: shardId } : {}) });
      gateway.dropConnections(shardId);
    },
    stallHandshakes: (on) => {
      log("fault", { action: on ? "stall-handshakes" : "release-handshakes" });
      gateway.handshakesStalled = on;
      if (!on) gateway.releaseStalled();
    },
    requestReconnect: () => {
      log("fault", { action: "reconnect" });
      gateway.requestReconnect();
    },
    invalidateSession: (resumable) => {
      log("fault", { action: "invalid-session", resumable });
      gateway.invalidateSession(resumable);
    },
    closeConnections: (code, reason) => {
      log("fault", { action: "close", code });
      gateway.closeConnections(code, reason);
    },
    breakResumeUrl: (on) => {
      log("fault", { action: on ? "break-resume-url" : "fix-resume-url" });
      gateway.resumeUrlBroken = on;
    },
    requestHeartbeat: () => {
      log("fault", { action: "heartbeat-request" });
      gateway.requestHeartbeat();
    },
    scriptRest: (fault) => {
      log("fault", { action: "rest", method: fault.method, route: fault.route, status: fault.status, times: fault.times ?? 1 });
      rest.scriptFault(fault);
    },
    received: gateway.received,
    closes: gateway.closes,
    handshakes: gateway.handshakes,
    async waitFor(predicate, timeoutMs = 5_000, what = "a simulator condition") {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = predicate();
        if (value !== undefined && value !== false) return value;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return sim;
}

function guildControl(world: SimWorld, log: (msg: string, fields?: Record<string, unknown>) => void): SimGuild {
  const fields = { guild: world.guildId };
  return {
    guildId: world.guildId,
    setVoiceState: (userId, channelId, flags) => world.setVoiceState(userId, channelId, flags),
    createChannel: (input) => world.createChannel({ ...input, type: (input.type ?? ChannelType.GuildVoice) as ChannelType }),
    updateChannel: (channelId, change) => world.updateChannel(channelId, change),
    deleteChannel: (channelId) => void world.deleteChannel(channelId),
    guildOutage: () => {
      log("guild outage", fields);
      world.guildOutage();
    },
    removeBot: () => {
      log("bot removed from the guild", fields);
      world.removeBot();
    },
    restoreGuild: () => {
      log("guild restored", fields);
      world.restoreGuild();
    },
    state: () => ({
      channels: [...world.channels.values()],
      voiceStates: [...world.voiceStates.values()].map(voiceStateOf),
      available: world.available,
      botMember: world.botMember,
    }),
  };
}

/** A voice state as the simulator's state shows it: without the Discord session it belongs to. */
function voiceStateOf({ sessionId: _session, ...state }: VoiceStateRecord): SimVoiceState {
  return state;
}
