import { REST } from "@discordjs/rest";
import { WebSocketManager, WebSocketShardEvents } from "@discordjs/ws";
import { GatewayDispatchEvents, GatewayIntentBits, type GatewayDispatchPayload } from "discord-api-types/v10";
import { afterEach, describe, expect, it } from "vitest";
import { startDiscordSimulator, type DiscordSimulator } from "../discord-sim/index.js";

const TOKEN = "fidelity-bot-token";
const GUILD = "100000000000000001";
const ROOM = "110000000000000001";
const users = ["210000000000000001", "210000000000000002", "210000000000000003"].map((id, i) => ({ id, username: `player${i}` }));

let sim: DiscordSimulator | undefined;
let manager: WebSocketManager | undefined;
afterEach(async () => {
  await manager?.destroy();
  await sim?.close();
  manager = sim = undefined;
});

/** Drives the simulator with discord.js's own gateway client, which has no idea it is not talking to Discord. */
async function connectDiscordJs(prepare?: (sim: DiscordSimulator) => void): Promise<{ dispatches: GatewayDispatchPayload[] }> {
  sim = await startDiscordSimulator({
    botToken: TOKEN,
    guildId: GUILD,
    heartbeatIntervalMs: 300,
    identifyIntervalMs: 0,
    channels: [{ id: ROOM, name: "Pod", type: 2, userLimit: 4 }],
    users,
  });
  prepare?.(sim);
  const rest = new REST({ version: "10", api: `${sim.url}/api` }).setToken(TOKEN);
  manager = new WebSocketManager({ token: TOKEN, intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildVoiceStates, rest });
  const dispatches: GatewayDispatchPayload[] = [];
  manager.on(WebSocketShardEvents.Dispatch, (payload: GatewayDispatchPayload) => dispatches.push(payload));
  await manager.connect();
  return { dispatches };
}

const voiceUpdates = (dispatches: GatewayDispatchPayload[]) =>
  dispatches.filter((d) => d.t === GatewayDispatchEvents.VoiceStateUpdate).map((d) => (d.d as { user_id: string }).user_id);

describe("the Discord simulator, driven by @discordjs/ws", () => {
  it("identifies, receives READY and GUILD_CREATE, then dispatches", async () => {
    const { dispatches } = await connectDiscordJs();
    await sim!.waitFor(() => dispatches.some((d) => d.t === GatewayDispatchEvents.GuildCreate), 5_000, "GUILD_CREATE");
    expect(dispatches.map((d) => d.t).slice(0, 2)).toEqual(["READY", "GUILD_CREATE"]);
    sim!.setVoiceState(users[0]!.id, ROOM);
    await sim!.waitFor(() => voiceUpdates(dispatches).length === 1, 5_000, "VOICE_STATE_UPDATE");
    expect(dispatches.map((d) => d.s)).toEqual(dispatches.map((_, i) => i + 1));
    await sim!.waitFor(() => sim!.received.some((r) => r.op === 1), 5_000, "a heartbeat from the client");
  });

  it("is resumed after a dropped TCP connection, replaying what was missed exactly once", async () => {
    const { dispatches } = await connectDiscordJs();
    await sim!.waitFor(() => dispatches.some((d) => d.t === GatewayDispatchEvents.GuildCreate), 5_000, "GUILD_CREATE");
    sim!.setVoiceState(users[0]!.id, ROOM);
    await sim!.waitFor(() => voiceUpdates(dispatches).length === 1, 5_000, "the first join");
    sim!.dropConnections();
    sim!.setVoiceState(users[1]!.id, ROOM); // while the client is away
    sim!.setVoiceState(users[2]!.id, ROOM);
    await sim!.waitFor(() => dispatches.some((d) => d.t === GatewayDispatchEvents.Resumed), 10_000, "RESUMED");
    await sim!.waitFor(() => voiceUpdates(dispatches).length === 3, 5_000, "the missed joins");
    expect(voiceUpdates(dispatches)).toEqual(users.map((u) => u.id));
    expect(dispatches.map((d) => d.s)).toEqual(dispatches.map((_, i) => i + 1)); // nothing twice, nothing skipped
    expect(sim!.state()).toMatchObject({ identifyCount: 1, resumeCount: 1 });
  });

  it("sees the guild as Discord sends it: channels, voice states without guild_id, members in voice", async () => {
    const { dispatches } = await connectDiscordJs((s) => s.setVoiceState(users[0]!.id, ROOM, { selfDeaf: true }));
    const guild = await sim!.waitFor(() => dispatches.find((d) => d.t === GatewayDispatchEvents.GuildCreate), 5_000, "GUILD_CREATE");
    const data = guild.d as unknown as { id: string; channels: Array<{ id: string }>; voice_states: Array<Record<string, unknown>>; members: Array<{ user: { id: string } }> };
    expect(data.id).toBe(GUILD);
    expect(data.channels.map((c) => c.id)).toEqual([ROOM]);
    expect(data.voice_states).toEqual([expect.objectContaining({ user_id: users[0]!.id, channel_id: ROOM, self_deaf: true })]);
    expect(data.voice_states[0]).not.toHaveProperty("guild_id");
    expect(data.members.map((m) => m.user.id)).toEqual([users[0]!.id]);
  });

  it("is resumed after op 9 Invalid Session with d:true", async () => {
    const { dispatches } = await connectDiscordJs();
    await sim!.waitFor(() => dispatches.some((d) => d.t === GatewayDispatchEvents.GuildCreate), 5_000, "GUILD_CREATE");
    sim!.invalidateSession(true);
    await sim!.waitFor(() => sim!.state().resumeCount === 1, 10_000, "a RESUME after op 9 d:true");
    expect(sim!.state().identifyCount).toBe(1);
  });

  it("is resumed when the client finds its connection a zombie (ACKs withheld)", async () => {
    const { dispatches } = await connectDiscordJs();
    await sim!.waitFor(() => dispatches.some((d) => d.t === GatewayDispatchEvents.GuildCreate), 5_000, "GUILD_CREATE");
    sim!.withholdAcks(true);
    await sim!.waitFor(() => sim!.state().resumeCount >= 1, 10_000, "a RESUME after heartbeats went unacknowledged");
    sim!.withholdAcks(false);
    sim!.setVoiceState(users[1]!.id, ROOM);
    await sim!.waitFor(() => voiceUpdates(dispatches).includes(users[1]!.id), 5_000, "a dispatch on the resumed session");
    expect(sim!.state().identifyCount).toBe(1);
  });

  it("is resumed after op 7 Reconnect", async () => {
    const { dispatches } = await connectDiscordJs();
    await sim!.waitFor(() => dispatches.some((d) => d.t === GatewayDispatchEvents.GuildCreate), 5_000, "GUILD_CREATE");
    sim!.requestReconnect();
    await sim!.waitFor(() => sim!.state().resumeCount === 1, 10_000, "a RESUME after op 7");
    expect(sim!.state().identifyCount).toBe(1);
  });
});
