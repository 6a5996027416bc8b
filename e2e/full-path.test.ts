import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startDiscordSimulator, type DiscordSimulator } from "../dev/discord-sim/index.js";
import { startGatewayNode, type GatewayNode } from "../dev/stack/gateway-node.js";
import { waitForHttp } from "../dev/stack/processes.js";
import { channelOf, type ServerMessage } from "../protocol/index.js";
import { until } from "../test-support/until.js";
import { ROOT } from "./support/paths.js";
import { startTestWorker, TestIssuer, type TestWorker } from "./support/test-worker.js";

const GUILD = "100000000000000001";
const ROOM_A = "110000000000000001";
const ROOM_B = "110000000000000002";
const USERS = ["210000000000000001", "210000000000000002", "210000000000000003"];
const TOKEN = "full-path-bot-token";
const SECRET = "full-path-hub-secret-0123456789abcdef";

let sim: DiscordSimulator;
let worker: TestWorker;
let gateway: GatewayNode;
let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await TestIssuer.create({ issuer: "full-path" });
  sim = await startDiscordSimulator({
    botToken: TOKEN,
    guildId: GUILD,
    heartbeatIntervalMs: 1_000,
    identifyIntervalMs: 0,
    channels: [{ id: ROOM_A, name: "Pod A", type: 2, userLimit: 4 }, { id: ROOM_B, name: "Pod B", type: 2, userLimit: 4 }],
    users: USERS.map((id, i) => ({ id, username: `player${i}` })),
  });
  worker = await startTestWorker({
    name: "full-path",
    vars: {
      PRIMARY_GUILD_ID: GUILD, DISCORD_BOT_TOKEN: TOKEN, HUB_SECRET: SECRET, JWT_ISSUER: issuer.issuer, JWT_AUDIENCE: issuer.audience,
      JWT_PUBLIC_JWK: JSON.stringify(issuer.publicJwk), DISCORD_API_BASE: sim.restBase,
    },
  });
  gateway = await startGatewayNode({
    root: ROOT,
    env: {
      ...process.env,
      DISCORD_BOT_TOKEN: TOKEN, PRIMARY_GUILD_ID: GUILD, HUB_ENDPOINT: `${worker.url}/internal/events`, HUB_SECRET: SECRET,
      DISCORD_API_BASE: sim.restBase, LOG_LEVEL: "warn", SESSION_FILE: join(worker.dir, "session.json"),
    },
  });
});

afterAll(async () => {
  await gateway?.stop();
  await worker?.stop();
  await sim?.close();
});

function token(sub = "200000000000000001"): Promise<string> {
  return issuer.token(sub, { name: "Full Path" });
}

/** A browser-like subscriber: auths, then records everything the hub sends. */
async function subscribe(extra: Record<string, unknown> = {}) {
  const messages: ServerMessage[] = [];
  const ws = new WebSocket(`${worker.url.replace("http", "ws")}/ws`);
  ws.on("message", (data) => messages.push(JSON.parse(String(data)) as ServerMessage));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "auth", token: await token(), ...extra }));
  await until(() => messages.find((m) => m.type === "snapshot" || m.type === "event") ?? (messages.length > 1 ? messages[1] : undefined), "the catch-up after auth");
  const events = () => messages.filter((m): m is Extract<ServerMessage, { type: "event" }> => m.type === "event");
  return { ws, messages, events };
}

describe("simulator → gateway-node → Worker → browser socket", () => {
  it("delivers Discord voice activity as app events with consecutive seq", async () => {
    await until(async () => ((await fetch(`${gateway.healthUrl}/healthz`)).ok ? true : undefined), "gateway-node healthy", 30_000);
    const client = await subscribe();
    sim.setVoiceState(USERS[0]!, ROOM_A);
    sim.setVoiceState(USERS[0]!, ROOM_A, { selfMute: true });
    sim.setVoiceState(USERS[1]!, ROOM_A);
    sim.setVoiceState(USERS[0]!, ROOM_B);
    sim.setVoiceState(USERS[1]!, null);
    // Joins and leaves; the rooms' own events (the gateway's first picture may reach the hub after this socket's
    // snapshot) and a media change the hub publishes before the move are not what this test is about.
    const presence = () => client.events().filter((e) => e.event === "voice.joined" || e.event === "voice.left");
    const joinsAndLeaves = await until(() => (presence().length >= 5 ? presence() : undefined), "five joins and leaves");
    expect(joinsAndLeaves.map((e) => `${e.event}:${"userId" in e.payload ? e.payload.userId : ""}@${channelOf(e)}`)).toEqual([
      `voice.joined:${USERS[0]}@${ROOM_A}`,
      `voice.joined:${USERS[1]}@${ROOM_A}`,
      `voice.left:${USERS[0]}@${ROOM_A}`,
      `voice.joined:${USERS[0]}@${ROOM_B}`,
      `voice.left:${USERS[1]}@${ROOM_A}`,
    ]);
    const seqs = client.events().map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    client.ws.close();
  });

  it("loses nothing when gateway-node is killed and restarted mid-stream", async () => {
    const client = await subscribe();
    await gateway.stop(); // SIGTERM: flush, close 4000
    sim.setVoiceState(USERS[2]!, ROOM_A); // while no gateway runs
    sim.setVoiceState(USERS[0]!, null);
    gateway.restart();
    const events = await until(() => (client.events().length >= 2 ? client.events() : undefined), "the events from the gap", 30_000);
    expect(events.map((e) => `${e.event}:${"userId" in e.payload ? e.payload.userId : ""}`)).toEqual([
      `voice.joined:${USERS[2]}`,
      `voice.left:${USERS[0]}`,
    ]);
    expect(sim.state().resumeCount).toBeGreaterThanOrEqual(1);
    const rooms = await (await fetch(`${worker.url}/rooms`, { headers: { Authorization: `Bearer ${await token()}` } })).json() as {
      rooms: Array<{ channelId: string; members: Array<{ userId: string }> }>;
    };
    const members = rooms.rooms.flatMap((r) => r.members.map((m) => `${m.userId}@${r.channelId}`)).sort();
    const truth = sim.state().voiceStates.map((v) => `${v.userId}@${v.channelId}`).sort();
    expect(members).toEqual(truth);
    client.ws.close();
  });

  it("creates and ends a room through REST, announcing each once", async () => {
    const client = await subscribe();
    const auth = { Authorization: `Bearer ${await token()}`, "Content-Type": "application/json" };
    const created = await fetch(`${worker.url}/create-room`, { method: "POST", headers: auth, body: JSON.stringify({ name: "Full path room" }) });
    expect(created.status).toBe(201);
    const { channelId } = (await created.json()) as { channelId: string };
    expect(sim.state().channels.some((c) => c.id === channelId)).toBe(true);
    const ended = await fetch(`${worker.url}/end-room/${channelId}`, { method: "DELETE", headers: auth });
    expect(ended.status).toBe(200);
    await waitForHttp(`${worker.url}/health`, 1_000, "the Worker");
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // let the gateway's CHANNEL_CREATE/DELETE arrive too
    // When the gateway's CHANNEL_CREATE beats the REST response, the hub adds the creator with a room.updated.
    const announced = client.events().map((e) => `${e.event}:${channelOf(e)}`).filter((e) => !e.startsWith("room.updated:"));
    expect(announced).toEqual([`room.created:${channelId}`, `room.deleted:${channelId}`]);
    expect(sim.state().auditLog.map((a) => a.reason)).toEqual(expect.arrayContaining([expect.stringContaining("created by user 200000000000000001")]));
  });
});
