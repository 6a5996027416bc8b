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
