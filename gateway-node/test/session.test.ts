import { afterEach, describe, expect, it } from "vitest";
import { GatewayOpcodes } from "discord-api-types/v10";
import { GUILD, startHarness, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";

let h: Harness;
afterEach(() => h?.close());

describe("a fresh Discord session", () => {
  it("identifies with GUILDS | GUILD_VOICE_STATES and sends one guild.sync, signed, to the hub", async () => {
    h = await startHarness();
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.hub.accepted.length >= 1, "the first delivery");
    const identify = h.sim.received.find((r) => r.op === GatewayOpcodes.Identify)!.d as { intents: number };
    expect(identify.intents).toBe((1 << 0) | (1 << 7));
    const sync = h.hub.accepted.filter((e) => e.event === "guild.sync");
    expect(sync).toHaveLength(1);
    expect(sync[0]!.payload).toMatchObject({ guildId: GUILD, channels: [{ channelId: ROOM_A, type: 2 }, { channelId: ROOM_B, type: 2 }] });
    expect(h.hub.posts.every((p) => p.status === 200)).toBe(true); // every POST passed the HMAC check
  });

  it("forwards each voice state, flags included, in Discord's order; the hub derives joins, moves, leaves and media", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "guild.sync");
    const [u] = USERS;
    h.sim.setVoiceState(u!, ROOM_A);
    h.sim.setVoiceState(u!, ROOM_A, { selfMute: true });
    h.sim.setVoiceState(u!, ROOM_A, { selfVideo: true, selfStream: true, deaf: true });
    h.sim.setVoiceState(u!, ROOM_B);
    h.sim.setVoiceState(u!, null);
    await until(() => h.hub.accepted.length === 6, "five voice states");
    const states = h.hub.accepted.slice(1).map((e) => e.payload as { userId: string; channelId: string | null; media: Record<string, boolean> });
    expect(states.map((s) => s.channelId)).toEqual([ROOM_A, ROOM_A, ROOM_A, ROOM_B, null]);
    expect(states[2]!.media).toEqual({ selfMute: true, selfDeaf: false, mute: false, deaf: true, selfVideo: true, selfStream: true });
    expect(h.hub.accepted[1]!.payload).toMatchObject({ userId: u, username: "player0" });
    expect(h.hub.summary().filter((e) => e.startsWith("voice."))).toEqual([
      `voice.joined:${u}@${ROOM_A}`,
      `voice.media:${u}@${ROOM_A}`,
      `voice.media:${u}@${ROOM_A}`,
      `voice.left:${u}@${ROOM_A}`,
      `voice.joined:${u}@${ROOM_B}`,
      `voice.left:${u}@${ROOM_B}`,
    ]);
  });

  it("names each state by its dispatch, <session>:<seq>, so a replay is a duplicate at the hub", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "guild.sync");
    h.sim.setVoiceState(USERS[1]!, ROOM_A);
    h.sim.setVoiceState(USERS[1]!, ROOM_B);
    await until(() => h.hub.accepted.length === 3, "a join and a move: one state each");
    const session = h.sim.state().sessions[0]!.id;
    const ids = h.hub.accepted.map((e) => e.id);
    expect(ids[0]).toMatch(new RegExp(`^${session}:\\d+$`));
    const seqs = ids.slice(1).map((id) => Number(id.split(":")[1]));
    expect(ids.slice(1)).toEqual(seqs.map((seq) => `${session}:${seq}`));
    expect(seqs[1]).toBe(seqs[0]! + 1);
  });

  it("forwards every channel's state with its type (the hub decides what a room is)", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "guild.sync");
    const chat = h.sim.createChannel({ name: "chat", type: 0 });
    const room = h.sim.createChannel({ name: "Pod C", type: 2, userLimit: 3 });
    h.sim.setVoiceState(USERS[2]!, room.id);
    h.sim.deleteChannel(room.id);
    await until(() => h.hub.accepted.length === 6, "two channels, a join, a delete, a leave");
    expect(h.hub.accepted.slice(1).map((e) => e.event)).toEqual(["channel.state", "channel.state", "voice.state", "channel.state", "voice.state"]);
    expect(h.hub.accepted[1]!.payload).toMatchObject({ channelId: chat.id, type: 0, name: "chat" });
    expect(h.hub.accepted[2]!.payload).toMatchObject({ channelId: room.id, type: 2, name: "Pod C", userLimit: 3, parentId: null });
    expect(h.hub.accepted[4]!.payload).toMatchObject({ channelId: room.id, deleted: true });
    expect(h.hub.summary().slice(3)).toEqual([`room.created:${room.id}`, `voice.joined:${USERS[2]}@${room.id}`, `room.deleted:${room.id}`]);
  });

  it("forwards an outage as guild.state unavailable, and the GUILD_CREATE that ends it as a guild.sync", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "guild.sync");
    h.sim.guildOutage();
    await until(() => h.hub.summary().includes("guild.status:unavailable"), "the outage at the hub");
    h.sim.restoreGuild();
    await until(() => h.hub.syncs() === 2, "a second guild.sync");
    expect(h.hub.accepted.map((e) => e.event)).toEqual(["guild.sync", "guild.state", "guild.sync"]);
    expect(h.hub.accepted[1]!.payload).toEqual({ guildId: GUILD, status: "unavailable" });
    expect(h.hub.summary().slice(3)).toEqual(["guild.status:unavailable", "guild.sync:0", "guild.status:available"]);
  });

  it("reports health and Prometheus metrics", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    const health = await fetch(`http://127.0.0.1:${h.service.healthPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, discord: "ready" });
    const metricsUrl = `http://127.0.0.1:${h.service.healthPort}/metrics`;
    // The counter moves when the hub's answer is read, just after the hub recorded the event.
    const metrics = await until(async () => {
      const text = await (await fetch(metricsUrl)).text();
      return /gateway_events_delivered_total 1\b/.test(text) && text;
    }, "the delivery in /metrics");
    expect(metrics).toContain('gateway_connection_state{state="ready"} 1');
    await h.hub.stop();
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => h.service.outbox.stats.failures > 0, "a failed delivery");
    expect((await fetch(`http://127.0.0.1:${h.service.healthPort}/healthz`)).status).toBe(503);
  });
});
