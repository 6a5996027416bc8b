import { describe, expect, it } from "vitest";
import type { GuildSyncPayload } from "../../protocol/index.js";
import { OutboxQueue, type OutboxEvent } from "../src/outbox-queue.js";

/** The outbox's queue on its own: what waits for a guild's hub, in Discord's order, bounded. */
const GUILD = "100000000000000001";
const [A, B] = ["110000000000000001", "110000000000000002"];
const USER = (i: number) => String(210000000000000000n + BigInt(i));
const MEDIA = { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false };

const voice = (seq: number, user: number, channelId: string | null, extra: Partial<typeof MEDIA> = {}): OutboxEvent => ({
  id: `s1:${seq}`,
  event: "voice.state",
  payload: { guildId: GUILD, userId: USER(user), channelId, media: { ...MEDIA, ...extra } },
});
const channel = (seq: number, channelId: string, name: string, deleted = false): OutboxEvent => ({
  id: `s1:${seq}`,
  event: "channel.state",
  payload: { guildId: GUILD, channelId, type: 2, name, parentId: null, userLimit: 0, ...(deleted ? { deleted: true as const } : {}) },
});
const picture = (voiceStates: GuildSyncPayload["voiceStates"] = []): { sync: GuildSyncPayload } => ({
  sync: { guildId: GUILD, channels: [{ channelId: A, type: 2, name: "A", parentId: null, userLimit: 0 }], voiceStates },
});
const absent = (seq: number): { absent: OutboxEvent } => ({ absent: { id: `s1:${seq}`, event: "guild.state", payload: { guildId: GUILD, status: "absent" } } });

describe("the outbox queue", () => {
  it("delivers states in order, and settling moves the position past the last one delivered", () => {
    const queue = new OutboxQueue(100);
    queue.pushState(voice(5, 0, A), "s1", 5);
    queue.pushState(voice(6, 1, A), "s1", 6);
    expect(queue.passed("s1", 7)).toBeUndefined(); // behind two undelivered states
    const batch = queue.take(1)!;
    expect(batch.events.map((e) => e.id)).toEqual(["s1:5"]);
    expect(queue.settle(batch)).toEqual({ position: { sessionId: "s1", seq: 5 } });
    expect(queue.settle(queue.take(10)!)).toEqual({ position: { sessionId: "s1", seq: 7 } }); // 7 said nothing of the guild
    expect(queue.passed("s1", 8)).toEqual({ sessionId: "s1", seq: 8 }); // nothing queued: at once
  });

  it("lets a whole picture supersede what waits, but not a batch in flight", () => {
    const queue = new OutboxQueue(100);
    queue.pushState(voice(1, 0, A), "s1", 1);
    const inFlight = queue.take(10)!;
    queue.pushState(voice(2, 1, A), "s1", 2);
    queue.pushPicture(absent(3), "s1", 3);
    expect(queue.depth).toBe(2);
    expect(queue.settle(inFlight).position).toEqual({ sessionId: "s1", seq: 1 });
    expect(queue.pictureAhead).toBe(true);
    const next = queue.take(10)!;
    expect(next).toMatchObject({ picture: true, events: [{ event: "guild.state", id: "s1:3" }] });
    expect(queue.settle(next)).toEqual({ position: { sessionId: "s1", seq: 3 }, pictureOf: "s1" });
  });

  it("lets a picture queued behind a batch the hub then refused supersede that batch too", () => {
    const queue = new OutboxQueue(100);
    queue.pushState(voice(1, 0, A), "s1", 1);
    queue.take(10);
    queue.pushPicture(absent(2), "s1", 2);
    queue.release();
    expect(queue.depth).toBe(1);
    expect(queue.pictureAhead).toBe(true);
  });

  it("folds the states after a picture not sent yet into it (the latest of each user and channel), under an id naming the dispatches", () => {
    const queue = new OutboxQueue(100);
    queue.pushPicture(picture([{ userId: USER(0), channelId: A, username: "Ann", media: MEDIA }]), "s1", 2);
    queue.pushState(voice(3, 1, A, { selfVideo: true }), "s1", 3);
    queue.pushState(voice(4, 0, null), "s1", 4);
    queue.pushState(channel(5, B, "B"), "s1", 5);
    queue.pushState(voice(6, 1, B, { selfVideo: true }), "s1", 6);
    expect(queue.depth).toBe(1);
    const batch = queue.take(10)!;
    expect(batch.events).toEqual([
      {
        id: "s1:2-6",
        event: "guild.sync",
        payload: {
          guildId: GUILD,
          channels: [{ channelId: A, type: 2, name: "A", parentId: null, userLimit: 0 }, { channelId: B, type: 2, name: "B", parentId: null, userLimit: 0 }],
          voiceStates: [{ userId: USER(1), channelId: B, media: { ...MEDIA, selfVideo: true } }],
        },
      },
    ]);
    // Sent, it is fixed: a later state queues behind it, and a retry sends the same events.
    queue.pushState(voice(7, 2, A), "s1", 7);
    queue.release();
    expect(queue.take(10)!.events).toEqual(batch.events);
    expect(queue.depth).toBe(2);
  });

  it("folds nothing while a resumed session replays: each replayed dispatch keeps its own id, which the hub may know", () => {
    const queue = new OutboxQueue(100);
    queue.pushPicture(picture(), "s1", 2);
    queue.pushState(voice(3, 1, A), "s1", 3, false);
    expect(queue.depth).toBe(2);
    expect(queue.take(10)!.events.map((e) => e.id)).toEqual(["s1:2"]);
  });

  it("marks a batch irregular when a replay could not reproduce it: a folded picture, states kept by a compaction", () => {
    const alone = new OutboxQueue(100);
    alone.pushPicture(picture(), "s1", 2);
    expect(alone.take(10)!.irregular).toBe(false);
    const folded = new OutboxQueue(100);
    folded.pushPicture(picture(), "s1", 2);
    folded.pushState(voice(3, 1, A), "s1", 3);
    expect(folded.take(10)!.irregular).toBe(true);
    const compacted = new OutboxQueue(2);
    for (let seq = 1; seq <= 3; seq++) compacted.pushState(voice(seq, 0, A), "s1", seq);
    expect(compacted.take(10)).toMatchObject({ irregular: true, events: [{ id: "s1:3" }] });
  });

  it("compacts on overflow to the latest state of each user and channel, in order, and drops the queue only past that", () => {
    const queue = new OutboxQueue(3);
    for (let seq = 1; seq <= 9; seq++) expect(queue.pushState(voice(seq, seq % 2, seq % 3 ? A : B), "s1", seq)).toEqual({ kind: "queued" });
    expect(queue.pushState(channel(10, A, "A, renamed"), "s1", 10)).toEqual({ kind: "queued" });
    expect(queue.take(10)!.events.map((e) => e.id)).toEqual(["s1:8", "s1:9", "s1:10"]);
    queue.release();
    expect(queue.pushState(voice(11, 2, A), "s1", 11)).toEqual({ kind: "dropped", count: 4 });
    expect(queue.depth).toBe(0);
  });

  it("keeps a newer session's silent dispatch until what was queued before it is delivered", () => {
    const queue = new OutboxQueue(100);
    queue.pushState(voice(9, 0, A), "s1", 9);
    expect(queue.passed("s2", 1)).toBeUndefined();
    expect(queue.settle(queue.take(10)!).position).toEqual({ sessionId: "s2", seq: 1 });
  });
});
