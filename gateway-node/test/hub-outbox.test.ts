import { afterEach, describe, expect, it } from "vitest";
import { startHarness, until, ROOM_A, ROOM_B, USERS, type Harness } from "./support/harness.js";
import { memorySessionStore } from "../src/session-store.js";

let h: Harness;
afterEach(() => h?.close());

describe("delivery to the hub", () => {
  it("loses nothing while the hub is down, keeps the order and sends no id twice", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    await h.hub.stop();
    const expected: string[] = [];
    for (let i = 0; i < 12; i++) {
      const user = USERS[i % USERS.length]!;
      const room = i % 2 === 0 ? ROOM_A : ROOM_B;
      h.sim.setVoiceState(user, room);
    }
    await until(() => h.service.outbox.stats.failures >= 2, "deliveries failing while the hub is down");
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain");
    // Rebuild what the translation must have produced from the simulator's own order of changes.
    const where = new Map<string, string>();
    for (let i = 0; i < 12; i++) {
      const user = USERS[i % USERS.length]!;
      const room = i % 2 === 0 ? ROOM_A : ROOM_B;
      const previous = where.get(user);
      if (previous === room) continue;
      if (previous) expected.push(`voice.left:${user}@${previous}`);
      expected.push(`voice.joined:${user}@${room}`);
      where.set(user, room);
    }
    expect(h.hub.summary().slice(1)).toEqual(expected);
    const ids = h.hub.accepted.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(h.hub.duplicates).toBe(0);
  });

  it("retries batches the hub answers with 5xx, in order", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    h.hub.failWith = 503;
    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    h.sim.setVoiceState(USERS[1]!, ROOM_A);
    await until(() => h.hub.posts.filter((p) => p.status === 503).length >= 2, "retries of the refused batch");
    h.hub.failWith = undefined;
    await until(() => h.hub.accepted.length === 3, "both events after the hub recovers");
    expect(h.hub.summary().slice(1)).toEqual([`voice.joined:${USERS[0]}@${ROOM_A}`, `voice.joined:${USERS[1]}@${ROOM_A}`]);
  });

  it("batches a burst instead of one POST per event", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 40; i++) h.sim.setVoiceState(USERS[i % 4]!, Math.floor(i / 4) % 2 ? ROOM_A : ROOM_B);
    await until(() => h.service.outbox.depth > 30, "a backlog");
    const postsBefore = h.hub.posts.length;
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the backlog to drain");
    expect(h.hub.posts.length - postsBefore).toBeLessThanOrEqual(2);
  });

  it("bounds memory: on overflow it drops the queue and converges with a guild.sync", async () => {
    h = await startHarness({ deps: { settings: { outboxMaxEvents: 5 } } });
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    await h.hub.stop();
    for (let i = 0; i < 20; i++) h.sim.setVoiceState(USERS[i % 4]!, i % 3 ? ROOM_A : ROOM_B);
    h.sim.setVoiceState(USERS[0]!, null);
    await until(() => h.service.outbox.stats.dropped > 0, "an overflow");
    expect(h.service.outbox.depth).toBeLessThanOrEqual(5);
    await h.hub.start(h.hub.port);
    await until(() => h.service.outbox.depth === 0, "the outbox to drain");
    const last = h.hub.accepted.at(-1)!;
    expect(last.event).toBe("guild.sync");
    const truth = h.sim.state().voiceStates.map(({ userId, channelId }) => ({ userId, channelId }));
    const synced = (last.payload as { voiceStates: Array<{ userId: string; channelId: string }> }).voiceStates.map(({ userId, channelId }) => ({ userId, channelId }));
    expect(synced.sort((a, b) => a.userId.localeCompare(b.userId))).toEqual(truth.sort((a, b) => a.userId.localeCompare(b.userId)));
  });
});

describe("a guild too large for one request", () => {
  it("sends its guild.sync in parts, each request under the hub's limit, and the parts add up to the guild", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "the first guild.sync");
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
