import { afterEach, describe, expect, it } from "vitest";
import { startDiscordSimulator, type DiscordSimulator } from "../discord-sim/index.js";

const TOKEN = "rest-test-token";
const GUILD = "100000000000000001";
let sim: DiscordSimulator;
afterEach(() => sim?.close());

const start = async () => {
  sim = await startDiscordSimulator({ botToken: TOKEN, guildId: GUILD, users: [{ id: "210000000000000001", username: "mira" }] });
  return sim;
};
const api = (path: string, init: RequestInit = {}, token = TOKEN) =>
  fetch(`${sim.restBase}${path}`, { ...init, headers: { Authorization: `Bot ${token}`, "Content-Type": "application/json", ...(init.headers as Record<string, string>) } });

describe("the simulator's REST API", () => {
  it("checks the bot token like Discord", async () => {
    await start();
    const response = await api("/gateway/bot", {}, "wrong");
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ message: "401: Unauthorized", code: 0 });
  });

  it("reports the gateway URL and session start limit", async () => {
    await start();
    const body = await (await api("/gateway/bot")).json();
    expect(body).toMatchObject({ url: sim.gatewayUrl, shards: 1, session_start_limit: { total: 1000, remaining: 1000, max_concurrency: 1 } });
  });

  it("creates a voice channel with rate-limit headers and records the audit-log reason", async () => {
    await start();
    const response = await api(`/guilds/${GUILD}/channels`, {
      method: "POST",
      headers: { "X-Audit-Log-Reason": encodeURIComponent("made by a test") },
      body: JSON.stringify({ name: "Pod", type: 2, user_limit: 4 }),
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ type: 2, guild_id: GUILD, name: "Pod", user_limit: 4 });
    for (const header of ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"]) {
      expect(response.headers.get(header), header).toBeTruthy();
    }
    expect(sim.state().auditLog).toEqual([{ method: "POST", path: `/guilds/${GUILD}/channels`, reason: "made by a test" }]);
  });

  it("answers Discord's error bodies: 50035, 10004, 10003", async () => {
    await start();
    const invalid = await api(`/guilds/${GUILD}/channels`, { method: "POST", body: JSON.stringify({ name: "" }) });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ code: 50035, message: "Invalid Form Body", errors: { name: expect.anything() } });
    const guild = await api("/guilds/999999999999999999/channels", { method: "POST", body: JSON.stringify({ name: "x" }) });
    expect(await guild.json()).toEqual({ message: "Unknown Guild", code: 10004 });
    const channel = await api("/channels/123456789012345678", { method: "DELETE" });
    expect(channel.status).toBe(404);
    expect(await channel.json()).toEqual({ message: "Unknown Channel", code: 10003 });
  });

  it("plays scripted 429s with retry_after and Retry-After", async () => {
    await start();
    sim.scriptRest({ method: "POST", route: "POST /guilds/:id/channels", status: 429, retryAfterS: 1.5, times: 1 });
    const limited = await api(`/guilds/${GUILD}/channels`, { method: "POST", body: JSON.stringify({ name: "x", type: 2 }) });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("Retry-After")).toBe("2");
    expect(await limited.json()).toEqual({ message: "You are being rate limited.", retry_after: 1.5, global: false });
    const next = await api(`/guilds/${GUILD}/channels`, { method: "POST", body: JSON.stringify({ name: "x", type: 2 }) });
    expect(next.status).toBe(201);
  });

  it("enforces its rate-limit bucket with a real 429", async () => {
    await start();
    const statuses: number[] = [];
    for (let i = 0; i < 51; i++) statuses.push((await api("/gateway/bot")).status);
    expect(statuses.slice(0, 50).every((s) => s === 200)).toBe(true);
    expect(statuses[50]).toBe(429);
  });
});

describe("the simulator's gateway edges", () => {
  async function open(path = "/gateway") {
    const { WebSocket } = await import("ws");
    const ws = new WebSocket(`${sim.url.replace("http", "ws")}${path}?v=10&encoding=json`);
    const messages: Array<{ op: number; t?: string; d: unknown; s?: number }> = [];
    let closed: number | undefined;
    ws.on("message", (data) => messages.push(JSON.parse(String(data)) as { op: number; d: unknown }));
    ws.on("close", (code) => (closed = code));
    await sim.waitFor(() => messages.some((m) => m.op === 10), 2_000, "HELLO");
    return { ws, messages, closed: () => sim.waitFor(() => closed, 2_000, "a close") };
  }
  const identify = (intents: number, token = TOKEN) => JSON.stringify({ op: 2, d: { token, intents, properties: {} } });

  it("closes 4002 for a payload over 4096 bytes and for bad JSON", async () => {
    await start();
    const big = await open();
    big.ws.send(JSON.stringify({ op: 1, d: "x".repeat(5_000) }));
    expect(await big.closed()).toBe(4002);
    const bad = await open();
    bad.ws.send("{nope");
    expect(await bad.closed()).toBe(4002);
  });

  it("closes 4004 for a bad token, 4014 for privileged intents, 4003 before identify", async () => {
    await start();
    const token = await open();
    token.ws.send(identify(129, "wrong"));
    expect(await token.closed()).toBe(4004);
    const intents = await open();
    intents.ws.send(identify(1 << 1));
    expect(await intents.closed()).toBe(4014);
    const early = await open();
    early.ws.send(JSON.stringify({ op: 3, d: {} }));
    expect(await early.closed()).toBe(4003);
  });

  it("answers RESUME of an unknown session with op 9 d:false", async () => {
    await start();
    const client = await open();
    client.ws.send(JSON.stringify({ op: 6, d: { token: TOKEN, session_id: "nope", seq: 1 } }));
    await sim.waitFor(() => client.messages.find((m) => m.op === 9), 2_000, "op 9");
    expect(client.messages.find((m) => m.op === 9)!.d).toBe(false);
    client.ws.terminate();
  });

  it("filters dispatches by intent and withholds ACKs on request", async () => {
    await start();
    const client = await open();
    client.ws.send(identify(1)); // GUILDS only
    await sim.waitFor(() => client.messages.some((m) => m.t === "GUILD_CREATE"), 2_000, "GUILD_CREATE");
    sim.createChannel({ name: "Pod", type: 2 });
    sim.setVoiceState("210000000000000001", sim.state().channels[0]!.id);
    await sim.waitFor(() => client.messages.some((m) => m.t === "CHANNEL_CREATE"), 2_000, "CHANNEL_CREATE");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(client.messages.some((m) => m.t === "VOICE_STATE_UPDATE")).toBe(false);
    sim.withholdAcks(true);
    client.ws.send(JSON.stringify({ op: 1, d: null }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(client.messages.some((m) => m.op === 11)).toBe(false);
    sim.withholdAcks(false);
    client.ws.send(JSON.stringify({ op: 1, d: null }));
    await sim.waitFor(() => client.messages.some((m) => m.op === 11), 2_000, "an ACK");
    client.ws.terminate();
  });

  it("emits a null-channel VOICE_STATE_UPDATE for each user when their channel is deleted", async () => {
    await start();
    const client = await open();
    client.ws.send(identify(129));
    await sim.waitFor(() => client.messages.some((m) => m.t === "GUILD_CREATE"), 2_000, "GUILD_CREATE");
    const room = sim.createChannel({ name: "Doomed", type: 2 });
    sim.setVoiceState("210000000000000001", room.id);
    sim.deleteChannel(room.id);
    await sim.waitFor(() => client.messages.filter((m) => m.t === "VOICE_STATE_UPDATE").length === 2, 2_000, "two voice updates");
    const last = client.messages.filter((m) => m.t === "VOICE_STATE_UPDATE").at(-1)!.d as { channel_id: string | null; user_id: string };
    expect(last).toMatchObject({ channel_id: null, user_id: "210000000000000001" });
    client.ws.terminate();
  });
});
