import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startDiscordSimulator, type DiscordSimulator } from "../dev/discord-sim/index.js";
import { startGatewayNode, type GatewayNode } from "../dev/stack/gateway-node.js";
import { channelOf, type ServerMessage } from "../protocol/index.js";
import { until } from "../test-support/until.js";
import { ROOT } from "./support/paths.js";
import { startTestWorker, TestIssuer, type TestWorker } from "./support/test-worker.js";

// Three guilds on two shards ((id >> 22) % 2): A and C on shard 0, B on shard 1.
const GUILD_A = "1258291200000000000";
const GUILD_B = "1258291200004194304";
const GUILD_C = "1258291200008388608";
const GUILDS = [GUILD_A, GUILD_B, GUILD_C] as const;
const ROOM = { [GUILD_A]: "120000000000000001", [GUILD_B]: "120000000000000002", [GUILD_C]: "120000000000000003" } as const;
const USERS = ["210000000000000001", "210000000000000002", "210000000000000003"];
const TOKEN = "multi-guild-bot-token";
const SECRET = "multi-guild-hub-secret-0123456789abcdef";

let sim: DiscordSimulator;
let worker: TestWorker;
/** Two gateway processes, one shard each, as one bot split over two machines would run. */
const gateways: GatewayNode[] = [];
let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await TestIssuer.create({ issuer: "multi-guild" });
  sim = await startDiscordSimulator({
    botToken: TOKEN,
    guildId: GUILD_A,
    heartbeatIntervalMs: 1_000,
    identifyIntervalMs: 0,
    recommendedShards: 2,
    channels: [{ id: ROOM[GUILD_A], name: "A", type: 2, userLimit: 4 }],
    guilds: [
      { guildId: GUILD_B, channels: [{ id: ROOM[GUILD_B], name: "B", type: 2, userLimit: 4 }] },
      { guildId: GUILD_C, channels: [{ id: ROOM[GUILD_C], name: "C", type: 2, userLimit: 4 }] },
    ],
    users: USERS.map((id, i) => ({ id, username: `player${i}` })),
  });
  worker = await startTestWorker({
    name: "multi-guild",
    vars: {
      PRIMARY_GUILD_ID: GUILD_A, ALLOWED_GUILD_IDS: `${GUILD_B},${GUILD_C}`, DISCORD_BOT_TOKEN: TOKEN, HUB_SECRET: SECRET,
      JWT_ISSUER: issuer.issuer, JWT_AUDIENCE: issuer.audience, JWT_PUBLIC_JWK: JSON.stringify(issuer.publicJwk), DISCORD_API_BASE: sim.restBase,
    },
  });
  for (const shard of [0, 1]) {
    gateways.push(await startGatewayNode({
      root: ROOT,
      env: {
        ...process.env,
        DISCORD_BOT_TOKEN: TOKEN, PRIMARY_GUILD_ID: GUILD_A, ALLOWED_GUILD_IDS: `${GUILD_B},${GUILD_C}`,
        SHARD_COUNT: "2", SHARD_IDS: String(shard),
        HUB_ENDPOINT: `${worker.url}/internal/events`, HUB_SECRET: SECRET, DISCORD_API_BASE: sim.restBase,
        LOG_LEVEL: "warn", SESSION_FILE: join(worker.dir, `session-${shard}.json`),
      },
    }));
  }
});

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.stop()));
  await worker?.stop();
  await sim?.close();
});

function token(): Promise<string> {
  return issuer.token("200000000000000001", { name: "Multi Guild", guilds: [...GUILDS] });
}

/** A browser socket on one guild's hub, recording its events. */
async function subscribe(guildId: string) {
  const messages: ServerMessage[] = [];
  const ws = new WebSocket(`${worker.url.replace("http", "ws")}/ws?guildId=${guildId}`);
  ws.on("message", (data) => messages.push(JSON.parse(String(data)) as ServerMessage));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "auth", token: await token() }));
  await until(() => messages.find((m) => m.type === "snapshot"), `${guildId}'s snapshot`);
  const events = () =>
    messages
      // Voice events only: a guild's first sync may announce its rooms after this socket subscribed.
      .filter((m): m is Extract<ServerMessage, { type: "event" }> => m.type === "event" && m.event.startsWith("voice."))
      .map((e) => `${e.event}:${"userId" in e.payload ? e.payload.userId : ""}@${channelOf(e)}:${e.payload.guildId}`);
  return { ws, events };
}

describe("two gateway processes, one shard each, three guilds, through the Worker", () => {
  it("brings each guild's voice activity to that guild's sockets only, also across one shard's reconnect and one guild's outage", async () => {
    for (const { healthUrl } of gateways) {
      await until(async () => ((await fetch(`${healthUrl}/healthz`)).ok ? true : undefined), `gateway-node at ${healthUrl} healthy`, 30_000);
    }
    const clients = Object.fromEntries(await Promise.all(GUILDS.map(async (guild) => [guild, await subscribe(guild)] as const)));
    GUILDS.forEach((guild, i) => sim.guild(guild).setVoiceState(USERS[i]!, ROOM[guild]));
    for (const [i, guild] of GUILDS.entries()) {
      await until(() => clients[guild]!.events().length >= 1 || undefined, `${guild}'s join`);
      expect(clients[guild]!.events()).toEqual([`voice.joined:${USERS[i]}@${ROOM[guild]}:${guild}`]);
    }

    sim.dropConnections(1); // shard 1 (GUILD_B) resumes alone
    sim.guild(GUILD_B).setVoiceState(USERS[1]!, null);
    sim.guild(GUILD_C).guildOutage(); // GUILD_C is unavailable: its change reaches the hub through the resync
    sim.guild(GUILD_C).setVoiceState(USERS[0]!, ROOM[GUILD_C]);
    sim.guild(GUILD_C).restoreGuild();
    await until(() => clients[GUILD_B]!.events().length >= 2 || undefined, "GUILD_B's leave after its shard resumed", 20_000);
    await until(() => clients[GUILD_C]!.events().length >= 2 || undefined, "GUILD_C's resync", 20_000);
    expect(clients[GUILD_B]!.events().at(-1)).toBe(`voice.left:${USERS[1]}@${ROOM[GUILD_B]}:${GUILD_B}`);
    expect(clients[GUILD_C]!.events().at(-1)).toBe(`voice.joined:${USERS[0]}@${ROOM[GUILD_C]}:${GUILD_C}`);
    await new Promise((resolve) => setTimeout(resolve, 500)); // room for a stray event to arrive
    expect(clients[GUILD_A]!.events()).toEqual([`voice.joined:${USERS[0]}@${ROOM[GUILD_A]}:${GUILD_A}`]);
    expect(sim.state().resumeCount).toBe(1);
    expect(sim.state().identifies.map((i) => i.shard).sort()).toEqual([[0, 2], [1, 2]]);

    const served = async (gateway: GatewayNode) => {
      const health = (await (await fetch(`${gateway.healthUrl}/healthz`)).json()) as { guilds: Record<string, { shard: number }> };
      return Object.fromEntries(Object.entries(health.guilds).map(([id, g]) => [id, g.shard]));
    };
    expect(await served(gateways[0]!)).toEqual({ [GUILD_A]: 0, [GUILD_C]: 0 });
    expect(await served(gateways[1]!)).toEqual({ [GUILD_B]: 1 });
    for (const client of Object.values(clients)) client.ws.close();
  });
});
