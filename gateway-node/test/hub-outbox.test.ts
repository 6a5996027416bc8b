import { afterEach, describe, expect, it } from "vitest";
import { FAST, GUILD, startHarness, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";
import { discordTruth, hubPicture } from "./support/hub-model.js";
import { memorySessionStore } from "../src/session-store.js";

let h: Harness;
afterEach(() => h?.close());

describe("delivery to the hub", () => {
  it("loses nothing while the hub is down, keeps Discord's order and sends no id twice", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 12; i++) h.sim.setVoiceState(USERS[i % USERS.length]!, i % 2 === 0 ? ROOM_A : ROOM_B);
    await until(() => h.service.outbox.stats.failures >= 2, "deliveries failing while the hub is down");
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain");
    // Every state, in the order Discord dispatched them.
    const moves = h.hub.accepted.slice(1).map((e) => (e.event === "voice.state" ? `${e.payload.userId}@${e.payload.channelId}` : e.event));
    expect(moves).toEqual(Array.from({ length: 12 }, (_, i) => `${USERS[i % USERS.length]}@${i % 2 === 0 ? ROOM_A : ROOM_B}`));
    const ids = h.hub.accepted.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(h.hub.duplicates).toBe(0);
    expect(hubPicture(h.hub.accepted)).toEqual(discordTruth(h.sim.guild(GUILD)));
  });

  it("retries batches the hub answers with 5xx, in order", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "guild.sync");
    h.hub.failWith = 503;
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    h.sim.setVoiceState(USERS[1]!, ROOM_A);
    await until(() => h.hub.posts.filter((p) => p.status === 503).length >= 2, "retries of the refused batch");
    h.hub.failWith = undefined;
    await until(() => h.hub.accepted.length === 3, "both states after the hub recovers");
    expect(h.hub.summary().filter((e) => e.startsWith("voice."))).toEqual([`voice.joined:${USERS[0]}@${ROOM_A}`, `voice.joined:${USERS[1]}@${ROOM_A}`]);
  });

  it("batches a burst instead of one POST per state", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 40; i++) h.sim.setVoiceState(USERS[i % 4]!, Math.floor(i / 4) % 2 ? ROOM_A : ROOM_B);
    await until(() => h.service.outbox.depth > 30, "a backlog");
    const postsBefore = h.hub.posts.length;
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the backlog to drain");
    expect(h.hub.posts.length - postsBefore).toBeLessThanOrEqual(2);
  });

  it("bounds memory: on overflow it keeps the latest state of each user, and the hub ends equal to Discord", async () => {
    h = await startHarness({ deps: { settings: { ...FAST, outboxMaxEvents: 5 } } });
    await until(() => h.hub.syncs() === 1, "guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 20; i++) h.sim.setVoiceState(USERS[i % 4]!, i % 3 ? ROOM_A : ROOM_B, { selfMute: i % 2 === 0 });
    h.sim.setVoiceState(USERS[0]!, null);
    await until(() => h.service.shard.session!.seq === h.sim.state().sessions[0]!.seq, "every dispatch read by the gateway");
    expect(h.service.outbox.depth).toBeLessThanOrEqual(5);
    expect(h.service.outbox.stats.dropped).toBe(0); // compacted, not dropped: four users, four states
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain");
    // The sync, the latest state of each of the four users, and at most the batch that was in flight as the hub
    // went down (retried as it was): not the 21 states.
    expect(h.hub.accepted.length).toBeLessThanOrEqual(1 + 4 + 1);
    expect(hubPicture(h.hub.accepted)).toEqual(discordTruth(h.sim.guild(GUILD)));
    expect(h.sim.state().identifyCount).toBe(1);
  });

  it("past compaction (more users than the queue holds) drops the queue and converges with a fresh session's picture", async () => {
    h = await startHarness({ deps: { settings: { ...FAST, outboxMaxEvents: 3 } } });
    await until(() => h.hub.syncs() === 1, "guild.sync");
    await h.hub.stop();
    for (const user of USERS) h.sim.setVoiceState(user, ROOM_A);
    await until(() => h.service.outbox.stats.dropped > 0, "an overflow past compaction");
    await until(() => h.sim.state().identifyCount === 2, "a fresh session (IDENTIFY)");
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0 && h.hub.syncs() === 2, "the fresh session's picture");
    expect(hubPicture(h.hub.accepted)).toEqual(discordTruth(h.sim.guild(GUILD)));
  });
});

describe("a guild too large for one request", () => {
  it("sends its guild.sync in parts, each request under the hub's limit, and the parts add up to the guild", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "the first guild.sync");
    await h.service.stop();
    const people = 9_000;
    for (let i = 0; i < people; i++) {
      const id = String(220000000000000000n + BigInt(i));
      h.sim.addUser({ id, username: `player-with-a-long-display-name-${i}` });
      h.sim.setVoiceState(id, i % 2 === 0 ? ROOM_A : ROOM_B);
    }
    await h.restart({ sessionStore: memorySessionStore() }); // a fresh session: its GUILD_CREATE is one big sync
    await until(() => h.hub.accepted.filter((e) => e.event === "guild.sync").length > 2, "the sync parts", 15_000);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain", 15_000);
    const parts = h.hub.accepted.slice(1).filter((e) => e.event === "guild.sync");
    const counts = parts.map((e) => (e.event === "guild.sync" ? e.payload.part?.count : undefined));
    expect(new Set(counts)).toEqual(new Set([parts.length]));
    const voiceStates = parts.flatMap((e) => (e.event === "guild.sync" ? e.payload.voiceStates : []));
    expect(voiceStates).toHaveLength(people);
    expect(h.hub.posts.every((post) => post.status === 200)).toBe(true);
  }, 30_000);
});
