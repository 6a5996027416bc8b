import { afterEach, describe, expect, it } from "vitest";
import { startDiscordSimulator, type DiscordSimulator } from "../discord-sim/index.js";
import { GatewayProbe } from "../discord-sim/probe.js";

const TOKEN = "control-test-token";
const GUILD = "100000000000000001";
const ROOM = "110000000000000001";
const NEWCOMER = "210000000000000009";

let sim: DiscordSimulator | undefined;
let probe: GatewayProbe | undefined;
afterEach(async () => {
  probe?.drop();
  await sim?.close();
  sim = probe = undefined;
});

async function start(): Promise<DiscordSimulator> {
  sim = await startDiscordSimulator({ botToken: TOKEN, guildId: GUILD, identifyIntervalMs: 0, channels: [{ id: ROOM, name: "Pod A", type: 2 }] });
  return sim;
}

const control = (path: string, init: { method?: string; body?: unknown } = {}) =>
  fetch(`${sim!.url}/_sim${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { "Content-Type": "application/json", Origin: "http://127.0.0.1:5173" },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });

describe("the simulator's HTTP control API", () => {
  it("reports state with CORS open to any origin, and answers preflight", async () => {
    await start();
    const state = await control("/state");
    expect(state.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(await state.json()).toMatchObject({ channels: [{ id: ROOM }], voiceStates: [], identifyCount: 0, guildAvailable: true });
    const preflight = await fetch(`${sim!.url}/_sim/voice`, { method: "OPTIONS" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("Access-Control-Allow-Methods")).toContain("POST");
    const rest = await fetch(`${sim!.restBase}/gateway/bot`, { headers: { Authorization: `Bot ${TOKEN}` } });
    expect(rest.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("moves users, adding one it does not know when a username comes along", async () => {
    await start();
    expect((await control("/voice", { body: { userId: NEWCOMER, channelId: ROOM, username: "Newcomer", selfMute: true } })).status).toBe(200);
    const none = { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false };
    expect(sim!.state().voiceStates).toEqual([{ userId: NEWCOMER, channelId: ROOM, ...none, selfMute: true }]);
    // Every flag Discord's voice state carries; the ones not given stay as they were.
    await control("/voice", { body: { userId: NEWCOMER, channelId: ROOM, selfVideo: true, selfStream: true, mute: true, deaf: true } });
    expect(sim!.state().voiceStates).toEqual([{ userId: NEWCOMER, channelId: ROOM, selfMute: true, selfDeaf: false, mute: true, deaf: true, selfVideo: true, selfStream: true }]);
    await control("/voice", { body: { userId: NEWCOMER, channelId: null } });
    expect(sim!.state().voiceStates).toEqual([]);
  });

  it("toggles camera, stream and a moderator's mute and deafen onto VOICE_STATE_UPDATE and GUILD_CREATE, keeping flags not given", async () => {
    await start();
    probe = new GatewayProbe(sim!.gatewayUrl);
    await sim!.waitFor(() => probe!.find(10), 2_000, "HELLO");
    probe.identify(TOKEN, 129);
    await sim!.waitFor(() => probe!.dispatches("GUILD_CREATE").length === 1, 2_000, "GUILD_CREATE");
    const voice = async (body: Record<string, unknown>) => expect((await control("/voice", { body: { userId: NEWCOMER, channelId: ROOM, ...body } })).status).toBe(200);
    await voice({ username: "Newcomer", selfVideo: true });
    await voice({ selfStream: true, mute: true, deaf: true });
    await voice({ selfVideo: false, selfMute: true });
    await sim!.waitFor(() => probe!.dispatches("VOICE_STATE_UPDATE").length === 3, 2_000, "three voice updates");
    // Discord leaves `self_stream` out of a voice state when the user is not streaming (the field is optional).
    const discordFlags = (state: Record<string, unknown>) =>
      Object.fromEntries(["self_mute", "self_deaf", "mute", "deaf", "self_video", "self_stream"].map((field) => [field, state[field] ?? (field === "self_stream" ? false : undefined)]));
    const updates = probe.dispatches("VOICE_STATE_UPDATE").map((m) => m.d as Record<string, unknown>);
    const off = { self_mute: false, self_deaf: false, mute: false, deaf: false, self_video: false, self_stream: false };
    expect(updates.map(discordFlags)).toEqual([
      { ...off, self_video: true },
      { ...off, self_video: true, self_stream: true, mute: true, deaf: true },
      { ...off, self_mute: true, self_stream: true, mute: true, deaf: true },
    ]);
    expect(updates[2]).toMatchObject({ channel_id: ROOM, user_id: NEWCOMER, member: { mute: true, deaf: true } });
    expect(sim!.state().voiceStates).toEqual([
      { userId: NEWCOMER, channelId: ROOM, selfMute: true, selfDeaf: false, mute: true, deaf: true, selfVideo: false, selfStream: true },
    ]);

    // A fresh picture (the guild back after an outage) carries the flags too.
    await control("/faults", { body: { action: "outage" } });
    await control("/faults", { body: { action: "restore" } });
    await sim!.waitFor(() => probe!.dispatches("GUILD_CREATE").length === 2, 2_000, "GUILD_CREATE after the outage");
    const { voice_states } = probe.dispatches("GUILD_CREATE")[1]!.d as { voice_states: Array<Record<string, unknown>> };
    expect(voice_states.map(discordFlags)).toEqual([{ ...off, self_mute: true, self_stream: true, mute: true, deaf: true }]);
  });

  it("rejects bad input with 400 and a reason", async () => {
    await start();
    const cases: Array<[string, unknown]> = [
      ["/voice", { userId: "nope", channelId: ROOM }],
      ["/voice", { userId: "210000000000000123", channelId: ROOM }], // unknown user, no username
      ["/voice", { userId: NEWCOMER, channelId: ROOM, username: "Newcomer", selfVideo: "on" }],
      ["/channels", { name: "" }],
      ["/faults", { action: "explode" }],
      ["/faults", { action: "close", code: 1006 }],
      ["/rest-faults", { method: "POST", route: "POST /guilds/:id/channels", status: 42 }],
    ];
    for (const [path, body] of cases) {
      const response = await control(path, { body });
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(await response.json()).toMatchObject({ error: "invalid_input", message: expect.any(String) });
    }
  });

  it("creates and deletes channels, 404 for one it does not have", async () => {
    await start();
    const created = (await (await control("/channels", { body: { name: "Pod B", type: 2, userLimit: 4 } })).json()) as { id: string; user_limit: number };
    expect(created.user_limit).toBe(4);
    expect((await control(`/channels/${created.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await control(`/channels/${created.id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("updates a channel's name, limit and parent with PATCH, 404 for one it does not have, and creates stage channels", async () => {
    await start();
    const updated = await control(`/channels/${ROOM}`, { method: "PATCH", body: { name: "Pod A+", userLimit: 8 } });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({ id: ROOM, name: "Pod A+", user_limit: 8, parent_id: null });
    expect((await control(`/channels/${ROOM}`, { method: "PATCH", body: {} })).status).toBe(400);
    expect((await control("/channels/110000000000000999", { method: "PATCH", body: { name: "x" } })).status).toBe(404);
    const stage = (await (await control("/channels", { body: { name: "Stage", type: 13 } })).json()) as { type: number };
    expect(stage.type).toBe(13);
    const preflight = await fetch(`${sim!.url}/_sim/channels/${ROOM}`, { method: "OPTIONS" });
    expect(preflight.headers.get("Access-Control-Allow-Methods")).toContain("PATCH");
  });

  it("applies gateway faults and scripted REST faults", async () => {
    await start();
    probe = new GatewayProbe(sim!.gatewayUrl);
    await sim!.waitFor(() => probe!.find(10), 2_000, "HELLO");
    probe.identify(TOKEN, 129);
    await sim!.waitFor(() => probe!.dispatches("GUILD_CREATE").length === 1, 2_000, "GUILD_CREATE");
    await control("/faults", { body: { action: "outage" } });
    await sim!.waitFor(() => probe!.dispatches("GUILD_DELETE").length === 1, 2_000, "GUILD_DELETE from the outage fault");
    await control("/faults", { body: { action: "restore" } });
    await sim!.waitFor(() => probe!.dispatches("GUILD_CREATE").length === 2, 2_000, "GUILD_CREATE from the restore fault");
    await control("/faults", { body: { action: "close", code: 4000 } });
    expect(await sim!.waitFor(() => probe!.closeCode, 2_000, "the close fault")).toBe(4000);

    await control("/rest-faults", { body: { method: "DELETE", route: "DELETE /channels/:id", status: 429, retryAfterS: 0.25 } });
    const limited = await fetch(`${sim!.restBase}/channels/${ROOM}`, { method: "DELETE", headers: { Authorization: `Bot ${TOKEN}` } });
    expect(limited.status).toBe(429);
    expect(await limited.json()).toEqual({ message: "You are being rate limited.", retry_after: 0.25, global: false });
    expect(limited.headers.get("X-RateLimit-Scope")).toBe("user");
  });
});
