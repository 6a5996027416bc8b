import { GatewayIntentBits } from "discord-api-types/v10";
import { describe, expect, it } from "vitest";
import type { GatewayProbe } from "../discord-sim/probe.js";
import { isSnowflake } from "../../protocol/snowflake.js";
import { simulatorFixture } from "./support/simulator-fixture.js";

const TOKEN = "gateway-edge-token";
const GUILD = "100000000000000001";
const ROOM = "110000000000000001";
const OTHER_ROOM = "110000000000000002";
const MIRA = "210000000000000001";
const OSKAR = "210000000000000002";
const VOICE_INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildVoiceStates;

const { sim, start, connect, open, closed } = simulatorFixture({
  botToken: TOKEN,
  guildId: GUILD,
  heartbeatIntervalMs: 500,
  identifyIntervalMs: 0,
  channels: [
    { id: ROOM, name: "Pod A", type: 2, userLimit: 4 },
    { id: OTHER_ROOM, name: "Pod B", type: 2 },
  ],
  users: [
    { id: MIRA, username: "Mira", avatar: "a1b2" },
    { id: OSKAR, username: "Oskar" },
  ],
});

async function ready(intents = VOICE_INTENTS): Promise<GatewayProbe> {
  const probe = await open();
  probe.identify(TOKEN, intents);
  await sim().waitFor(() => probe.dispatches("READY").length === 1, 2_000, "READY");
  return probe;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("gateway handshake and heartbeats", () => {
  it("says HELLO with the heartbeat interval, ACKs heartbeats and asks for one on request", async () => {
    await start({ heartbeatIntervalMs: 321 });
    const probe = await open();
    expect(probe.find(10)).toEqual({ op: 10, d: { heartbeat_interval: 321 }, s: null, t: null });
    probe.send({ op: 1, d: null });
    await sim().waitFor(() => probe.find(11), 2_000, "a heartbeat ACK");
    sim().requestHeartbeat();
    await sim().waitFor(() => probe.find(1), 2_000, "a heartbeat request (op 1) from the server");
  });

  it("withholds ACKs on request and sends them again when released", async () => {
    await start();
    const probe = await ready();
    sim().withholdAcks(true);
    probe.send({ op: 1, d: 2 });
    await pause(100);
    expect(probe.find(11)).toBeUndefined();
    sim().withholdAcks(false);
    probe.send({ op: 1, d: 2 });
    await sim().waitFor(() => probe.find(11), 2_000, "an ACK after release");
  });

  it("times out a client that stops heartbeating with 4009, and its session cannot be resumed", async () => {
    await start({ heartbeatIntervalMs: 100 });
    const probe = await ready();
    const sessionId = (probe.dispatches("READY")[0]!.d as { session_id: string }).session_id;
    expect(await sim().waitFor(() => probe.closeCode, 3_000, "the heartbeat timeout")).toBe(4009);
    const again = await open("/gateway-resume");
    again.resume(TOKEN, sessionId, 2);
    await sim().waitFor(() => again.find(9), 2_000, "op 9 for the timed-out session");
    expect(again.find(9)!.d).toBe(false);
  });

  it("refuses an API version it does not speak with 4012", async () => {
    await start();
    const probe = connect("/gateway?v=6&encoding=json");
    expect(await closed(probe, "v=6")).toBe(4012);
  });
});

describe("gateway close codes", () => {
  it("closes 4002 for a payload over 4096 bytes and for bad JSON", async () => {
    await start();
    const big = await open();
    big.send({ op: 1, d: "x".repeat(5_000) });
    expect(await closed(big, "oversized payload")).toBe(4002);
    const bad = await open();
    bad.send("{nope");
    expect(await closed(bad, "bad JSON")).toBe(4002);
  });

  it("closes 4001 for an unknown opcode, 4003 before IDENTIFY, 4005 for a second IDENTIFY", async () => {
    await start();
    const unknown = await open();
    unknown.send({ op: 99, d: null });
    expect(await closed(unknown, "unknown opcode")).toBe(4001);
    const early = await open();
    early.send({ op: 3, d: { since: null, activities: [], status: "online", afk: false } });
    expect(await closed(early, "presence before identify")).toBe(4003);
    const twice = await ready();
    twice.identify(TOKEN, VOICE_INTENTS);
    expect(await closed(twice, "second identify")).toBe(4005);
  });

  it("closes 4004 for a bad token, 4013 for invalid intents, 4014 for privileged intents", async () => {
    await start();
    const token = await open();
    token.identify("wrong", VOICE_INTENTS);
    expect(await closed(token, "bad token")).toBe(4004);
    const invalid = await open();
    invalid.identify(TOKEN, 1 << 30);
    expect(await closed(invalid, "invalid intents")).toBe(4013);
    const privileged = await open();
    privileged.identify(TOKEN, GatewayIntentBits.GuildMembers);
    expect(await closed(privileged, "privileged intents")).toBe(4014);
  });

  it("accepts the token in IDENTIFY with or without the Bot prefix", async () => {
    await start();
    const prefixed = await open();
    prefixed.identify(`Bot ${TOKEN}`, VOICE_INTENTS);
    await sim().waitFor(() => prefixed.dispatches("READY").length === 1, 2_000, "READY for a Bot-prefixed token");
    await ready();
    expect(sim().state().identifyCount).toBe(2);
  });

  it("closes 4008 when a client sends more than 120 commands a minute", async () => {
    await start();
    const probe = await ready();
    for (let i = 0; i < 121; i++) probe.send({ op: 3, d: { since: null, activities: [], status: "online", afk: false } });
    expect(await closed(probe, "command flood")).toBe(4008);
  });
});

describe("READY, GUILD_CREATE and dispatches", () => {
  it("sends READY then GUILD_CREATE shaped as Discord sends them", async () => {
    await start();
    sim().setVoiceState(MIRA, ROOM, { selfMute: true });
    const probe = await ready();
    await sim().waitFor(() => probe.dispatches("GUILD_CREATE").length === 1, 2_000, "GUILD_CREATE");
    const [readyEvent, guild] = probe.dispatches();
    expect(readyEvent).toMatchObject({ s: 1, t: "READY", d: { v: 10, guilds: [{ id: GUILD, unavailable: true }], user: { bot: true } } });
    const readyData = readyEvent!.d as { session_id: string; resume_gateway_url: string };
    expect(readyData.session_id).toMatch(/^[0-9a-f]{32}$/);
    expect(readyData.resume_gateway_url).toBe(`${sim().url.replace("http", "ws")}/gateway-resume`);
    expect(guild).toMatchObject({ s: 2, t: "GUILD_CREATE" });
    const data = guild!.d as { voice_states: Array<Record<string, unknown>>; members: Array<{ user: { id: string } }>; channels: Array<{ id: string; type: number }> };
    expect(data).toMatchObject({ id: GUILD, unavailable: false, member_count: 2 });
    expect(data.channels.map((c) => [c.id, c.type])).toEqual([[ROOM, 2], [OTHER_ROOM, 2]]);
    expect(data.voice_states).toEqual([expect.objectContaining({ channel_id: ROOM, user_id: MIRA, self_mute: true })]);
    expect(data.voice_states[0]).not.toHaveProperty("guild_id");
    expect(data.members.map((m) => m.user.id)).toEqual([MIRA]);
  });

  it("sends VOICE_STATE_UPDATE for join, mute, move (one update, new channel only) and leave", async () => {
    await start();
    const probe = await ready();
    sim().setVoiceState(MIRA, ROOM);
    sim().setVoiceState(MIRA, ROOM, { selfDeaf: true });
    sim().setVoiceState(MIRA, OTHER_ROOM);
    sim().setVoiceState(MIRA, null);
    await sim().waitFor(() => probe.dispatches("VOICE_STATE_UPDATE").length === 4, 2_000, "four voice updates");
    const updates = probe.dispatches("VOICE_STATE_UPDATE").map((m) => m.d as Record<string, unknown>);
    expect(updates.map((u) => [u.channel_id, u.self_deaf])).toEqual([[ROOM, false], [ROOM, true], [OTHER_ROOM, true], [null, true]]);
    expect(updates[0]).toMatchObject({
      guild_id: GUILD,
      user_id: MIRA,
      member: { user: { id: MIRA, username: "mira", global_name: "Mira", avatar: "a1b2" } },
      deaf: false,
      mute: false,
      self_mute: false,
      self_video: false,
      suppress: false,
      request_to_speak_timestamp: null,
    });
    expect(typeof updates[0]!.session_id).toBe("string");
    expect(probe.dispatches().map((m) => m.s)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("sends CHANNEL_CREATE and CHANNEL_DELETE with full channel objects, then a null-channel update per user", async () => {
    await start();
    const probe = await ready();
    const room = sim().createChannel({ name: "Doomed", type: 2, userLimit: 3 });
    sim().setVoiceState(MIRA, room.id);
    sim().setVoiceState(OSKAR, room.id);
    sim().deleteChannel(room.id);
    await sim().waitFor(() => probe.dispatches("VOICE_STATE_UPDATE").length === 4, 2_000, "joins and disconnects");
    expect(room.id).toSatisfy(isSnowflake);
    const created = probe.dispatches("CHANNEL_CREATE")[0]!.d;
    expect(created).toMatchObject({ id: room.id, type: 2, guild_id: GUILD, name: "Doomed", parent_id: null, user_limit: 3, bitrate: 64_000, permission_overwrites: [] });
    expect(probe.dispatches("CHANNEL_DELETE")[0]!.d).toEqual(created);
    const afterDelete = probe.dispatches().slice(-3).map((m) => [m.t, (m.d as { channel_id?: string | null }).channel_id]);
    expect(afterDelete).toEqual([["CHANNEL_DELETE", undefined], ["VOICE_STATE_UPDATE", null], ["VOICE_STATE_UPDATE", null]]);
  });

  it("sends CHANNEL_UPDATE with the whole updated channel, and stage channels shaped as Discord sends them", async () => {
    await start();
    const probe = await ready();
    const stage = sim().createChannel({ name: "Town Hall", type: 13 });
    sim().updateChannel(ROOM, { name: "Pod A renamed", userLimit: 6 });
    sim().updateChannel(stage.id, { name: "Town Hall 2" });
    sim().setVoiceState(MIRA, stage.id);
    await sim().waitFor(() => probe.dispatches("VOICE_STATE_UPDATE").length === 1, 2_000, "a join into the stage");
    expect(probe.dispatches("CHANNEL_CREATE")[0]!.d).toMatchObject({ id: stage.id, type: 13, guild_id: GUILD, user_limit: 0, bitrate: 64_000, topic: null });
    const [room, renamedStage] = probe.dispatches("CHANNEL_UPDATE").map((m) => m.d);
    expect(room).toMatchObject({ id: ROOM, type: 2, guild_id: GUILD, name: "Pod A renamed", user_limit: 6, parent_id: null, bitrate: 64_000, permission_overwrites: [] });
    expect(renamedStage).toMatchObject({ id: stage.id, type: 13, name: "Town Hall 2" });
    expect(probe.dispatches("VOICE_STATE_UPDATE")[0]!.d).toMatchObject({ channel_id: stage.id, user_id: MIRA });
    expect(sim().updateChannel("110000000000000999", { name: "nobody" })).toBeUndefined();
  });

  it("filters dispatches by intents", async () => {
    await start();
    const guildsOnly = await ready(GatewayIntentBits.Guilds);
    const voiceOnly = await ready(GatewayIntentBits.GuildVoiceStates);
    sim().createChannel({ name: "Pod C", type: 2 });
    sim().setVoiceState(MIRA, ROOM);
    await sim().waitFor(() => guildsOnly.dispatches("CHANNEL_CREATE").length === 1, 2_000, "CHANNEL_CREATE for GUILDS");
    await sim().waitFor(() => voiceOnly.dispatches("VOICE_STATE_UPDATE").length === 1, 2_000, "VOICE_STATE_UPDATE for GUILD_VOICE_STATES");
    await pause(50);
    expect(guildsOnly.dispatches("VOICE_STATE_UPDATE")).toHaveLength(0);
    expect(voiceOnly.dispatches().map((m) => m.t)).toEqual(["READY", "VOICE_STATE_UPDATE"]);
  });

  it("scripts an outage: GUILD_DELETE unavailable, silence, then a GUILD_CREATE with what changed meanwhile", async () => {
    await start();
    const probe = await ready();
    await sim().waitFor(() => probe.dispatches("GUILD_CREATE").length === 1, 2_000, "GUILD_CREATE");
    sim().guildOutage();
    sim().setVoiceState(MIRA, ROOM);
    await sim().waitFor(() => probe.dispatches("GUILD_DELETE").length === 1, 2_000, "GUILD_DELETE");
    expect(probe.dispatches("GUILD_DELETE")[0]!.d).toEqual({ id: GUILD, unavailable: true });
    const late = await ready();
    sim().restoreGuild();
    await sim().waitFor(() => probe.dispatches("GUILD_CREATE").length === 2, 2_000, "GUILD_CREATE after the outage");
    expect(probe.dispatches("VOICE_STATE_UPDATE")).toHaveLength(0);
    expect((probe.dispatches("GUILD_CREATE")[1]!.d as { voice_states: unknown[] }).voice_states).toHaveLength(1);
    await sim().waitFor(() => late.dispatches("GUILD_CREATE").length === 1, 2_000, "GUILD_CREATE for a session identified during the outage");
    expect(late.dispatches().map((m) => m.t)).toEqual(["READY", "GUILD_CREATE"]);
  });
});

describe("RESUME", () => {
  async function sessionWithJoin() {
    const probe = await ready();
    sim().setVoiceState(MIRA, ROOM);
    await sim().waitFor(() => probe.dispatches("VOICE_STATE_UPDATE").length === 1, 2_000, "the join");
    const sessionId = (probe.dispatches("READY")[0]!.d as { session_id: string }).session_id;
    return { probe, sessionId, seq: probe.dispatches().at(-1)!.s! };
  }

  it("replays what a dropped client missed, in order, then RESUMED, on the resume URL", async () => {
    await start();
    const { probe, sessionId, seq } = await sessionWithJoin();
    probe.drop();
    await sim().waitFor(() => sim().state().sessions.every((s) => !s.connected), 2_000, "the session to see the drop");
    sim().setVoiceState(OSKAR, ROOM);
    sim().setVoiceState(MIRA, null);
    const resumed = await open("/gateway-resume?v=10&encoding=json");
    resumed.resume(TOKEN, sessionId, seq);
    await sim().waitFor(() => resumed.dispatches("RESUMED").length === 1, 2_000, "RESUMED");
    expect(resumed.dispatches().map((m) => [m.s, m.t])).toEqual([[4, "VOICE_STATE_UPDATE"], [5, "VOICE_STATE_UPDATE"], [6, "RESUMED"]]);
    expect(sim().state()).toMatchObject({ identifyCount: 1, resumeCount: 1, sessions: [{ id: sessionId, seq: 6, connected: true }] });
  });

  it("answers op 9 d:false for an unknown session, a session closed with 1000, and one past its resume window", async () => {
    await start({ resumeWindowMs: 100 });
    const unknown = await open();
    unknown.resume(TOKEN, "no-such-session", 1);
    await sim().waitFor(() => unknown.find(9), 2_000, "op 9 for an unknown session");
    expect(unknown.find(9)!.d).toBe(false);

    const normal = await sessionWithJoin();
    normal.probe.socket.close(1000);
    await sim().waitFor(() => normal.probe.closeCode, 2_000, "the 1000 close");
    const afterNormal = await open();
    afterNormal.resume(TOKEN, normal.sessionId, normal.seq);
    await sim().waitFor(() => afterNormal.find(9), 2_000, "op 9 after a 1000 close");

    const expired = await sessionWithJoin();
    expired.probe.drop();
    await pause(250);
    const afterWindow = await open();
    afterWindow.resume(TOKEN, expired.sessionId, expired.seq);
    await sim().waitFor(() => afterWindow.find(9), 2_000, "op 9 after the resume window");
    expect(sim().state().resumeCount).toBe(0);
  });

  it("keeps a session closed with 4000 resumable, and records the close code it received", async () => {
    await start();
    const { probe, sessionId, seq } = await sessionWithJoin();
    probe.socket.close(4000, "back soon");
    await sim().waitFor(() => probe.closeCode, 2_000, "the 4000 close");
    await sim().waitFor(() => sim().closes.length === 1, 2_000, "the close to be recorded");
    expect(sim().closes[0]).toMatchObject({ sessionId, code: 4000, reason: "back soon", by: "client" });
    expect(sim().state().closes).toEqual(sim().closes);
    const resumed = await open("/gateway-resume");
    resumed.resume(TOKEN, sessionId, seq);
    await sim().waitFor(() => resumed.dispatches("RESUMED").length === 1, 2_000, "RESUMED after a 4000 close");
  });

  it("closes 4007 for a sequence the session never reached", async () => {
    await start();
    const { probe, sessionId, seq } = await sessionWithJoin();
    probe.drop();
    const resumed = await open("/gateway-resume");
    resumed.resume(TOKEN, sessionId, seq + 10);
    expect(await closed(resumed, "invalid seq")).toBe(4007);
  });

  it("fails the resume URL's handshake when broken, while the base URL still works", async () => {
    await start();
    sim().breakResumeUrl(true);
    const broken = connect("/gateway-resume");
    await sim().waitFor(() => broken.handshakeError, 2_000, "the resume URL handshake to fail");
    expect(broken.opened).toBe(false);
    await open("/gateway");
  });

  it("stalls handshakes: TCP accepted, no upgrade until released", async () => {
    await start();
    sim().stallHandshakes(true);
    const stalled = connect("/gateway");
    await pause(200);
    expect(stalled.opened).toBe(false);
    sim().stallHandshakes(false);
    await sim().waitFor(() => stalled.handshakeError ?? stalled.closeCode, 2_000, "the stalled handshake to be cut");
    await open();
  });

  it("after op 9 the socket is unauthenticated: RESUME (d:true) or IDENTIFY (d:false) on the same connection", async () => {
    await start();
    const probe = await ready();
    const sessionId = (probe.dispatches("READY")[0]!.d as { session_id: string }).session_id;
    sim().invalidateSession(true);
    await sim().waitFor(() => probe.find(9), 2_000, "op 9 d:true");
    probe.resume(TOKEN, sessionId, 2);
    await sim().waitFor(() => probe.dispatches("RESUMED").length === 1, 2_000, "RESUMED on the same socket");
    sim().invalidateSession(false);
    await sim().waitFor(() => probe.messages.filter((m) => m.op === 9).length === 2, 2_000, "op 9 d:false");
    probe.identify(TOKEN, VOICE_INTENTS);
    await sim().waitFor(() => probe.dispatches("READY").length === 2, 2_000, "a fresh READY on the same socket");
    expect(sim().state()).toMatchObject({ identifyCount: 2, resumeCount: 1 });
  });

  it("sends op 7 and op 9 to connected clients on request", async () => {
    await start();
    const probe = await ready();
    sim().requestReconnect();
    await sim().waitFor(() => probe.find(7), 2_000, "op 7");
    sim().invalidateSession(true);
    await sim().waitFor(() => probe.find(9), 2_000, "op 9");
    expect(probe.find(9)!.d).toBe(true);
    sim().closeConnections(4000, "scripted");
    expect(await closed(probe, "scripted close")).toBe(4000);
  });
});

describe("identify limits", () => {
  it("answers an IDENTIFY inside the max_concurrency window with op 9 d:false", async () => {
    await start({ identifyIntervalMs: 5_000 });
    await ready();
    const second = await open();
    second.identify(TOKEN, VOICE_INTENTS);
    await sim().waitFor(() => second.find(9), 2_000, "op 9 for an identify too soon");
    expect(second.find(9)!.d).toBe(false);
    expect(sim().state().identifyCount).toBe(1);
  });

  it("spends the session start limit, and resets the token when a client identifies past it", async () => {
    await start({ sessionStartLimit: { total: 5, remaining: 1, resetAfterMs: 60_000, maxConcurrency: 1 } });
    const first = await ready();
    expect(sim().state().sessionStartLimit).toMatchObject({ total: 5, remaining: 0, max_concurrency: 1 });
    const over = await open();
    over.identify(TOKEN, VOICE_INTENTS);
    expect(await closed(over, "identify past the limit")).toBe(4004);
    expect(await closed(first, "every session terminated")).toBe(4004);
    expect(sim().state().tokenRevoked).toBe(true);
    const rest = await fetch(`${sim().restBase}/gateway/bot`, { headers: { Authorization: `Bot ${TOKEN}` } });
    expect(rest.status).toBe(401);
  });
});
