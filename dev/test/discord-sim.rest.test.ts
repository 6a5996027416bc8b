import { afterEach, describe, expect, it } from "vitest";
import { startDiscordSimulator, type DiscordSimulator } from "../discord-sim/index.js";
import { GatewayProbe } from "../discord-sim/probe.js";

const TOKEN = "rest-test-token";
const GUILD = "100000000000000001";
let sim: DiscordSimulator;
let probe: GatewayProbe | undefined;
afterEach(async () => {
  probe?.drop();
  probe = undefined;
  await sim?.close();
});

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

describe("the simulator's REST channels and faults", () => {
  const createRoom = (name = "Pod", headers: Record<string, string> = {}) =>
    api(`/guilds/${GUILD}/channels`, { method: "POST", headers, body: JSON.stringify({ name, type: 2, user_limit: 4 }) });

  it("deletes a channel: 200 with the channel, CHANNEL_DELETE and a null-channel update per user on the gateway", async () => {
    await start();
    probe = new GatewayProbe(sim.gatewayUrl);
    await sim.waitFor(() => probe!.find(10), 2_000, "HELLO");
    probe.identify(TOKEN, 129);
    await sim.waitFor(() => probe!.dispatches("GUILD_CREATE").length === 1, 2_000, "GUILD_CREATE");
    const room = (await (await createRoom()).json()) as { id: string };
    sim.setVoiceState("210000000000000001", room.id);
    const response = await api(`/channels/${room.id}`, { method: "DELETE", headers: { "X-Audit-Log-Reason": "room%20ended" } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: room.id, type: 2, guild_id: GUILD });
    await sim.waitFor(() => probe!.dispatches("VOICE_STATE_UPDATE").length === 2, 2_000, "the join and the disconnect");
    expect(probe.dispatches().slice(2).map((m) => m.t)).toEqual(["CHANNEL_CREATE", "VOICE_STATE_UPDATE", "CHANNEL_DELETE", "VOICE_STATE_UPDATE"]);
    expect(probe.dispatches("VOICE_STATE_UPDATE")[1]!.d).toMatchObject({ channel_id: null, user_id: "210000000000000001", guild_id: GUILD });
    expect(sim.state().auditLog.at(-1)).toEqual({ method: "DELETE", path: `/channels/${room.id}`, reason: "room ended" });
    expect((await api(`/channels/${room.id}`)).status).toBe(404);
  });

  it("reads channels back and answers 50109 for a body that is not JSON", async () => {
    await start();
    const room = (await (await createRoom("Readable")).json()) as { id: string };
    expect(await (await api(`/channels/${room.id}`)).json()).toMatchObject({ id: room.id, name: "Readable" });
    expect((await (await api(`/guilds/${GUILD}/channels`)).json()) as unknown[]).toHaveLength(1);
    const broken = await api(`/guilds/${GUILD}/channels`, { method: "POST", body: "{" });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({ message: "The request body contains invalid JSON.", code: 50109 });
  });

  it("lists each invalid field the way Discord does", async () => {
    await start();
    const response = await api(`/guilds/${GUILD}/channels`, { method: "POST", body: JSON.stringify({ name: "x".repeat(101), user_limit: 100, type: 99 }) });
    const body = (await response.json()) as { errors: Record<string, { _errors: Array<{ code: string; message: string }> }> };
    expect(Object.keys(body.errors).sort()).toEqual(["name", "type", "user_limit"]);
    expect(body.errors.name!._errors[0]).toEqual({ code: "BASE_TYPE_BAD_LENGTH", message: "Must be between 1 and 100 in length." });
  });

  it("answers 30013 when the guild already has 500 channels", async () => {
    await start();
    for (let i = 0; i < 500; i++) sim.createChannel({ name: `filler-${i}`, type: 0 });
    const response = await createRoom();
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ message: "Maximum number of guild channels reached (500)", code: 30013 });
  });

  it("plays scripted errors with Discord bodies, whatever the route's parameter is called", async () => {
    await start();
    sim.scriptRest({ method: "POST", route: "POST /guilds/:guildId/channels", status: 403, times: 2 });
    sim.scriptRest({ method: "DELETE", route: "/channels/:channelId", status: 500, body: { message: "500: Internal Server Error", code: 0 } });
    for (let i = 0; i < 2; i++) {
      const denied = await createRoom();
      expect(denied.status).toBe(403);
      expect(await denied.json()).toEqual({ message: "Missing Permissions", code: 50013 });
    }
    expect((await createRoom()).status).toBe(201);
    expect((await api("/channels/123456789012345678", { method: "DELETE" })).status).toBe(500);
    expect(sim.state().channels).toHaveLength(1);
  });

  it("delays a request by a scripted amount and then serves it", async () => {
    await start();
    sim.scriptRest({ method: "POST", route: "POST /guilds/:id/channels", status: 200, delayMs: 300 });
    const started = Date.now();
    const response = await createRoom();
    expect(response.status).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it("keeps a separate bucket per channel, under one bucket hash", async () => {
    await start();
    const a = await api("/channels/123456789012345671", { method: "DELETE" });
    const b = await api("/channels/123456789012345672", { method: "DELETE" });
    expect(a.headers.get("X-RateLimit-Remaining")).toBe("49");
    expect(b.headers.get("X-RateLimit-Remaining")).toBe("49");
    expect(a.headers.get("X-RateLimit-Bucket")).toBe(b.headers.get("X-RateLimit-Bucket"));
  });
});
