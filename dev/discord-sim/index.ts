import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ChannelType } from "discord-api-types/v10";
import { BotToken } from "./bot-token.js";
import { handleControl } from "./control.js";
import { SimGateway } from "./gateway.js";
import { SimRest, type RestFault } from "./rest.js";
import { DEFAULT_IDENTIFY_INTERVAL_MS, SessionStartBudget, type SessionStartLimit } from "./session-start.js";
import { SimWorld, type ChannelObject, type SimUser } from "./world.js";

export type { ChannelObject, RestFault, SessionStartLimit, SimUser };

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
  channels?: Array<{ id?: string; name: string; type?: 0 | 2 | 4; parentId?: string | null; userLimit?: number }>;
  users?: SimUser[];
  resumeWindowMs?: number;
  /** Receives what the simulator does (identify, resume, REST writes, faults); silent when absent. */
  log?: (entry: SimLogEntry) => void;
}

export interface SimState {
  channels: ChannelObject[];
  users: SimUser[];
  voiceStates: Array<{ userId: string; channelId: string; selfMute: boolean; selfDeaf: boolean }>;
  sessions: Array<{ id: string; seq: number; connected: boolean; identifiedAt: number }>;
  identifyCount: number;
  resumeCount: number;
  auditLog: Array<{ method: string; path: string; reason: string | null }>;
  sessionStartLimit: { total: number; remaining: number; reset_after: number; max_concurrency: number };
  guildAvailable: boolean;
  /** True once an IDENTIFY over the session start limit got the token reset, as Discord does. */
  tokenRevoked: boolean;
}

export interface DiscordSimulator {
  readonly url: string;
  readonly restBase: string;
  readonly gatewayUrl: string;
  setVoiceState(userId: string, channelId: string | null, flags?: { selfMute?: boolean; selfDeaf?: boolean }): void;
  addUser(user: SimUser): void;
  createChannel(input: { name: string; type?: 0 | 2; parentId?: string | null; userLimit?: number }): ChannelObject;
  updateChannel(channelId: string, changes: { name?: string; userLimit?: number; parentId?: string | null }): ChannelObject;
  deleteChannel(channelId: string): void;
  guildOutage(): void;
  restoreGuild(): void;
  state(): SimState;
  withholdAcks(on: boolean): void;
  dropConnections(): void;
  stallHandshakes(on: boolean): void;
  requestReconnect(): void;
  invalidateSession(resumable: boolean): void;
  closeConnections(code: number, reason?: string): void;
  breakResumeUrl(on: boolean): void;
  requestHeartbeat(): void;
  scriptRest(fault: RestFault): void;
  readonly received: Array<{ sessionId: string | null; op: number; d: unknown; at: number }>;
  waitFor<T>(predicate: () => T | undefined | false, timeoutMs?: number, what?: string): Promise<T>;
  close(): Promise<void>;
}

/** Starts the Discord simulator: REST under /api/v10, the gateway at /gateway, the control API under /_sim. */
export async function startDiscordSimulator(options: SimulatorOptions): Promise<DiscordSimulator> {
  const host = options.host ?? "127.0.0.1";
  const world = new SimWorld(options.guildId, options.guildName ?? "Simulated Guild");
  for (const user of options.users ?? []) world.addUser(user);
  for (const channel of options.channels ?? []) {
    world.createChannel({ ...channel, type: (channel.type ?? ChannelType.GuildVoice) as ChannelType });
  }
  const log = (msg: string, fields: Record<string, unknown> = {}) => options.log?.({ msg, ...fields, guildId: options.guildId });
  const token = new BotToken(options.botToken);
  const budget = new SessionStartBudget(
    options.sessionStartLimit ?? { total: 1000, remaining: 1000, resetAfterMs: 86_400_000, maxConcurrency: 1 },
    options.identifyIntervalMs ?? DEFAULT_IDENTIFY_INTERVAL_MS,
  );
  let base = "";
  const gateway = new SimGateway(world, {
    token,
    budget,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
    resumeWindowMs: options.resumeWindowMs ?? 60_000,
    resumeUrl: () => `${base.replace("http", "ws")}/gateway-resume`,
    log,
  });
  const rest = new SimRest(world, { token, budget, gatewayUrl: () => `${base.replace("http", "ws")}/gateway`, log });

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
    setVoiceState: (userId, channelId, flags) => world.setVoiceState(userId, channelId, flags),
    addUser: (user) => world.addUser(user),
    createChannel: (input) => world.createChannel({ ...input, type: (input.type ?? ChannelType.GuildVoice) as ChannelType }),
    updateChannel: (channelId, changes) => world.updateChannel(channelId, changes),
    deleteChannel: (channelId) => void world.deleteChannel(channelId),
    guildOutage: () => {
      log("guild outage");
      world.guildOutage();
    },
    restoreGuild: () => {
      log("guild restored");
      world.restoreGuild();
    },
    state: () => ({
      channels: [...world.channels.values()],
      users: [...world.users.values()],
      voiceStates: [...world.voiceStates.values()].map(({ userId, channelId, selfMute, selfDeaf }) => ({ userId, channelId, selfMute, selfDeaf })),
      sessions: [...gateway.sessions.values()].map((s) => ({ id: s.id, seq: s.seq, connected: s.socket !== undefined, identifiedAt: s.identifiedAt })),
      identifyCount: gateway.identifyCount,
      resumeCount: gateway.resumeCount,
      auditLog: rest.auditLog,
      sessionStartLimit: budget.snapshot(),
      guildAvailable: world.available,
      tokenRevoked: token.isRevoked,
    }),
    withholdAcks: (on) => {
      log("fault", { action: on ? "withhold-acks" : "release-acks" });
      gateway.acksWithheld = on;
    },
    dropConnections: () => {
      log("fault", { action: "drop-tcp" });
      gateway.dropConnections();
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
