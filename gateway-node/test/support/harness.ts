import { existsSync, readFileSync } from "node:fs";
import { startDiscordSimulator, type DiscordSimulator, type SimulatorOptions } from "../../../dev/discord-sim/index.js";
import type { GatewayConfig } from "../../src/config.js";
import { silentLogger } from "../../src/log.js";
import { memorySessionStore, type SessionStore } from "../../src/session-store.js";
import { startGatewayService, type GatewayService, type GatewayServiceDeps } from "../../src/service.js";
import { FakeHub, HUB_SECRET } from "./fake-hub.js";

export const BOT_TOKEN = "gateway-test-bot-token";
export const GUILD = "100000000000000001";
export const ROOM_A = "110000000000000001";
export const ROOM_B = "110000000000000002";
export const USERS = ["210000000000000001", "210000000000000002", "210000000000000003", "210000000000000004"];

/** Timings shrunk so reconnect paths take milliseconds; behaviour is the production code's. */
export const FAST: GatewayServiceDeps["settings"] = {
  flushTimeoutMs: 2_000,
  standbyPollMs: 100,
  hubBackoff: { minMs: 20, maxMs: 200, factor: 2 },
  shard: {
    identifySpacingMs: 0,
    connectTimeoutMs: 1_000,
    helloTimeoutMs: 1_000,
    readyTimeoutMs: 2_000,
    invalidSessionWaitMs: { min: 50, max: 100 },
    backoff: { minMs: 20, maxMs: 200, factor: 2 },
  },
};

/** The test hub's lease TTL: the edge's 30 s shrunk, so renewals and takeovers take moments. */
export const TEST_LEASE_TTL_MS = 1_500;

export interface Harness {
  sim: DiscordSimulator;
  hub: FakeHub;
  service: GatewayService;
  store: SessionStore;
  config: GatewayConfig;
  restart(extra?: Partial<GatewayServiceDeps>): Promise<GatewayService>;
  close(): Promise<void>;
}

export async function startHarness(
  options: { sim?: Partial<SimulatorOptions>; deps?: Partial<GatewayServiceDeps>; config?: Partial<GatewayConfig> } = {},
): Promise<Harness> {
  const sim = await startDiscordSimulator({
    botToken: BOT_TOKEN,
    guildId: GUILD,
    heartbeatIntervalMs: 200,
    identifyIntervalMs: 0,
    channels: [
      { id: ROOM_A, name: "Pod A", type: 2, userLimit: 4 },
      { id: ROOM_B, name: "Pod B", type: 2, userLimit: 4 },
    ],
    users: USERS.map((id, i) => ({ id, username: `player${i}` })),
    ...options.sim,
  });
  const hub = new FakeHub();
  hub.leaseTtlMs = TEST_LEASE_TTL_MS;
  await hub.start();
  const config: GatewayConfig = {
    DISCORD_BOT_TOKEN: BOT_TOKEN,
    PRIMARY_GUILD_ID: GUILD,
    HUB_ENDPOINT: hub.endpoint,
    HUB_SECRET,
    DISCORD_API_BASE: sim.restBase,
    HEALTH_PORT: 0,
    LOG_LEVEL: "error",
    ...options.config,
  };
  const store = options.deps?.sessionStore ?? memorySessionStore();
  const start = (extra: Partial<GatewayServiceDeps> = {}) =>
    startGatewayService(config, { log: silentLogger, settings: FAST, sessionStore: store, ...options.deps, ...extra });
  const harness: Harness = {
    sim,
    hub,
    store,
    config,
    service: await start(),
    async restart(extra) {
      harness.service = await start(extra);
      return harness.service;
    },
    async close() {
      await harness.service.stop().catch(() => undefined);
      await hub.stop();
      await sim.close();
    },
  };
  return harness;
}

export { until } from "../../../test-support/until.js";

/** A shard's session as SESSION_FILE holds it (`{sessionId: "", seq: -1}` before one is written). */
export function storedShardSession(file: string, shard = 0): { sessionId: string; seq: number; resumeGatewayUrl: string } {
  const none = { sessionId: "", seq: -1, resumeGatewayUrl: "" };
  if (!existsSync(file)) return none;
  const state = JSON.parse(readFileSync(file, "utf8")) as { shards?: Record<string, { sessionId: string; seq: number; resumeGatewayUrl: string }> };
  return state.shards?.[String(shard)] ?? none;
}
