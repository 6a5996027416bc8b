import { afterEach, describe, expect, it } from "vitest";
import { GatewayOpcodes } from "discord-api-types/v10";
import { startHarness, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";

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
    expect(sync[0]!.payload).toMatchObject({ guildId: "100000000000000001", channels: [{ channelId: ROOM_A }, { channelId: ROOM_B }] });
    expect(h.hub.posts.every((p) => p.status === 200)).toBe(true); // every POST passed the HMAC check
  });

  it("turns joins, moves and leaves into voice events and ignores mute and deafen", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    const [u] = USERS;
    h.sim.setVoiceState(u!, ROOM_A);
    h.sim.setVoiceState(u!, ROOM_A, { selfMute: true });
    h.sim.setVoiceState(u!, ROOM_A, { selfDeaf: true });
    h.sim.setVoiceState(u!, ROOM_B);
    h.sim.setVoiceState(u!, null);
    await until(() => h.hub.accepted.length === 5, "four voice events");
    expect(h.hub.summary().slice(1)).toEqual([
      `voice.joined:${u}@${ROOM_A}`,
      `voice.left:${u}@${ROOM_A}`,
      `voice.joined:${u}@${ROOM_B}`,
      `voice.left:${u}@${ROOM_B}`,
    ]);
    expect(h.hub.accepted[1]!.payload).toMatchObject({ username: "player0" });
  });

  it("gives events stable ids, with an index when one dispatch becomes two", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    h.sim.setVoiceState(USERS[1]!, ROOM_A);
    h.sim.setVoiceState(USERS[1]!, ROOM_B);
    await until(() => h.hub.accepted.length === 4, "join then move");
    const session = h.sim.state().sessions[0]!.id;
    const ids = h.hub.accepted.slice(1).map((e) => e.id);
    expect(ids[0]).toMatch(new RegExp(`^${session}:\\d+$`));
    expect(ids[1]).toMatch(new RegExp(`^${session}:\\d+:0$`));
    expect(ids[2]).toBe(ids[1]!.replace(/:0$/, ":1"));
  });

  it("announces voice rooms created and deleted in Discord, ignoring text channels", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    h.sim.createChannel({ name: "chat", type: 0 });
    const room = h.sim.createChannel({ name: "Pod C", type: 2, userLimit: 3 });
    h.sim.setVoiceState(USERS[2]!, room.id);
    h.sim.deleteChannel(room.id);
    await until(() => h.hub.accepted.length === 5, "created, joined, deleted, left");
    expect(h.hub.summary().slice(1)).toEqual([
      `room.created:${room.id}`,
      `voice.joined:${USERS[2]}@${room.id}`,
      `room.deleted:${room.id}`,
      `voice.left:${USERS[2]}@${room.id}`,
    ]);
    expect(h.hub.accepted[1]!.payload).toMatchObject({ name: "Pod C", userLimit: 3 });
  });

  it("treats GUILD_DELETE unavailable as an outage and resyncs when the guild returns", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    h.sim.guildOutage();
    h.sim.restoreGuild();
    await until(() => h.hub.accepted.length === 2, "a second guild.sync");
    expect(h.hub.summary()).toEqual(["guild.sync:0", "guild.sync:0"]);
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
