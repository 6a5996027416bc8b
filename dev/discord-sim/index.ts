import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ChannelType } from "discord-api-types/v10";
import { handleControl } from "./control.js";
import { SimGateway } from "./gateway.js";
import { SimRest, type RestFault } from "./rest.js";
import { SimWorld, type ChannelObject, type SimUser } from "./world.js";

export type { ChannelObject, RestFault, SimUser };

export interface SimulatorOptions {
  port?: number;
  host?: string;
  botToken: string;
  guildId: string;
  guildName?: string;
  heartbeatIntervalMs?: number;
  sessionStartLimit?: { total: number; remaining: number; resetAfterMs: number; maxConcurrency: number };
  identifyIntervalMs?: number;
  channels?: Array<{ id?: string; name: string; type?: 0 | 2 | 4; parentId?: string | null; userLimit?: number }>;
  users?: SimUser[];
  resumeWindowMs?: number;
}

export interface SimState {
  channels: ChannelObject[];
  users: SimUser[];
  voiceStates: Array<{ userId: string; channelId: string; selfMute: boolean; selfDeaf: boolean }>;
  sessions: Array<{ id: string; seq: number; connected: boolean; identifiedAt: number }>;
  identifyCount: number;
  resumeCount: number;
  auditLog: Array<{ method: string; path: string; reason: string | null }>;
}

export interface DiscordSimulator {
  readonly url: string;
  readonly restBase: string;
  readonly gatewayUrl: string;
  setVoiceState(userId: string, channelId: string | null, flags?: { selfMute?: boolean; selfDeaf?: boolean }): void;
  addUser(user: SimUser): void;
  createChannel(input: { name: string; type?: 0 | 2; parentId?: string | null; userLimit?: number }): ChannelObject;
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
  const sessionStartLimit = options.sessionStartLimit ?? { total: 1000, remaining: 1000, resetAfterMs: 86_400_000, maxConcurrency: 1 };
  let base = "";
  const gateway = new SimGateway(world, {
    botToken: options.botToken,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
    identifyIntervalMs: options.identifyIntervalMs ?? 5_000,
    resumeWindowMs: options.resumeWindowMs ?? 60_000,
    sessionStartLimit,
    resumeUrl: () => `${base.replace("http", "ws")}/gateway-resume`,
  });
  const rest = new SimRest(world, { botToken: options.botToken, gatewayUrl: () => `${base.replace("http", "ws")}/gateway`, sessionStartLimit });

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://sim").pathname;
    const handled = path.startsWith("/api/v10/")
      ? rest.handle(request, response, path.slice("/api/v10".length))
      : path.startsWith("/_sim/")
        ? handleControl(sim, request, response, path)
        : Promise.resolve(void response.writeHead(404).end());
    handled.catch(() => {
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
    deleteChannel: (channelId) => void world.deleteChannel(channelId),
    guildOutage: () => world.guildOutage(),
    restoreGuild: () => world.restoreGuild(),
    state: () => ({
      channels: [...world.channels.values()],
      users: [...world.users.values()],
      voiceStates: [...world.voiceStates.values()].map(({ userId, channelId, selfMute, selfDeaf }) => ({ userId, channelId, selfMute, selfDeaf })),
      sessions: [...gateway.sessions.values()].map((s) => ({ id: s.id, seq: s.seq, connected: s.socket !== undefined, identifiedAt: s.identifiedAt })),
      identifyCount: gateway.identifyCount,
      resumeCount: gateway.resumeCount,
      auditLog: rest.auditLog,
    }),
    withholdAcks: (on) => void (gateway.acksWithheld = on),
    dropConnections: () => gateway.dropConnections(),
    stallHandshakes: (on) => {
      gateway.handshakesStalled = on;
      if (!on) gateway.releaseStalled();
    },
    requestReconnect: () => gateway.requestReconnect(),
    invalidateSession: (resumable) => gateway.invalidateSession(resumable),
    closeConnections: (code, reason) => gateway.closeConnections(code, reason),
    breakResumeUrl: (on) => void (gateway.resumeUrlBroken = on),
    requestHeartbeat: () => gateway.requestHeartbeat(),
    scriptRest: (fault) => rest.scriptFault(fault),
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
