import { describe, expect, it } from "vitest";
import type { EventEnvelope, VoiceMedia } from "../../protocol/index.js";
import { mediaOf, PresenceStore, type PresenceDiff } from "../presence.js";

const guildId = "100000000000000001";
const A = "110000000000000001";
const B = "110000000000000002";
const U = "210000000000000001";
const V = "210000000000000002";
const W = "210000000000000003";

const off: VoiceMedia = { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false };
const camera: VoiceMedia = { ...off, selfVideo: true };

const ev = (seq: number, event: EventEnvelope["event"], payload: Record<string, unknown>) =>
  ({ v: 1, type: "event", event, payload: { guildId, ...payload }, ts: 0, seq }) as EventEnvelope;
const media = (seq: number, channelId: string, userId: string, flags: VoiceMedia) => ev(seq, "voice.media", { channelId, userId, media: flags });

/** Room A with U (no media: an older hub) and V (muted), room B with W (streaming). */
function seeded(): PresenceStore {
  const store = new PresenceStore();
  store.applySnapshot({
    seq: 10,
    payload: {
      rooms: [
        { channelId: A, name: "A", userLimit: 4, members: [{ userId: U }, { userId: V, media: { ...off, selfMute: true } }] },
        { channelId: B, name: "B", userLimit: 4, members: [{ userId: W, media: { ...off, selfStream: true } }] },
      ],
    },
  });
  return store;
}

const memberOf = (store: PresenceStore, userId: string) => store.getSnapshot().rooms.flatMap((room) => room.members).find((m) => m.userId === userId)!;
const roomById = (store: PresenceStore, channelId: string) => store.getSnapshot().rooms.find((room) => room.channelId === channelId)!;

describe("members' media state", () => {
  it("comes with the snapshot's members; a member without it reads as every flag off", () => {
    const store = seeded();
    expect(memberOf(store, V).media).toEqual({ ...off, selfMute: true });
    expect(memberOf(store, U).media).toBeUndefined();
    expect(mediaOf(memberOf(store, U))).toEqual(off);
    expect(mediaOf(memberOf(store, W))).toEqual({ ...off, selfStream: true });
  });

  it("comes with voice.joined, also on a move", () => {
    const store = seeded();
    store.applyEvent(ev(11, "voice.joined", { channelId: B, userId: U, username: "u", media: camera }));
    expect(memberOf(store, U)).toMatchObject({ username: "u", media: camera });
    expect(store.membersOf(A).map((m) => m.userId)).toEqual([V]);
  });

  it("changes with voice.media, replacing that room and member only", () => {
    const store = seeded();
    const [roomA, roomB] = store.getSnapshot().rooms;
    const v = memberOf(store, V);
    expect(store.applyEvent(media(11, A, U, camera))).toBe("applied");
    expect(memberOf(store, U).media).toEqual(camera);
    expect(roomById(store, A)).not.toBe(roomA);
    expect(roomById(store, B), "another room keeps its object").toBe(roomB);
    expect(memberOf(store, V), "another member of the room keeps its object").toBe(v);
    expect(store.seq).toBe(11);
  });

  it("is a state: the same voice.media again changes nothing but the seq, and a duplicate seq is ignored", () => {
    const store = seeded();
    store.applyEvent(media(11, A, U, camera));
    const before = store.getSnapshot();
    const diffs: PresenceDiff[] = [];
    store.onChange((diff) => diffs.push(diff));
    expect(store.applyEvent(media(12, A, U, camera))).toBe("applied");
    expect(store.getSnapshot().rooms).toEqual(before.rooms);
    expect(roomById(store, A), "the room keeps its object").toBe(before.rooms[0]);
    expect(store.seq).toBe(12);
    expect(store.applyEvent(media(12, A, U, off))).toBe("duplicate");
    expect(memberOf(store, U).media).toEqual(camera);
    expect(diffs).toEqual([]);
  });

  it("ignores voice.media for a user the store does not hold in that room, without a gap", () => {
    const store = seeded();
    const before = store.getSnapshot().rooms;
    expect(store.applyEvent(media(11, B, U, camera)), "U is in room A, not B").toBe("applied");
    expect(store.applyEvent(media(12, A, "210000000000000009", camera)), "nobody known").toBe("applied");
    expect(store.applyEvent(media(13, "110000000000000009", U, camera)), "a room not known").toBe("applied");
    expect(store.seq).toBe(13);
    expect(store.getSnapshot().rooms).toEqual(before);
    expect(store.getSnapshot().rooms.every((room, i) => room === before[i])).toBe(true);
  });

  it("does not count media absent (an older hub) and every flag off as a change", () => {
    const store = seeded();
    const diffs: PresenceDiff[] = [];
    store.onChange((diff) => diffs.push(diff));
    store.applyEvent(media(11, A, U, off));
    store.applySnapshot({ seq: 12, payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [{ userId: U, media: off }] }] } });
    expect(diffs.flatMap((diff) => diff.mediaChanged)).toEqual([]);
  });
});

describe("the diff's mediaChanged", () => {
  it("reports each member whose flags changed, with the flags before and after, event by event", () => {
    const store = seeded();
    const diffs: PresenceDiff[] = [];
    store.onChange((diff) => diffs.push(diff));
    store.applyEvent(media(11, A, U, camera));
    store.applyEvent(media(12, A, V, off));
    expect(diffs.map((diff) => diff.mediaChanged)).toEqual([
      [{ channelId: A, member: expect.objectContaining({ userId: U, media: camera }), before: off, after: camera }],
      [{ channelId: A, member: expect.objectContaining({ userId: V }), before: { ...off, selfMute: true }, after: off }],
    ]);
    expect(diffs.every((diff) => diff.joined.length + diff.left.length + diff.moved.length === 0)).toBe(true);
  });

  it("is not reported for the first snapshot; a later snapshot reports the flags it changed, a move with new flags both", () => {
    const store = new PresenceStore();
    const diffs: PresenceDiff[] = [];
    store.onChange((diff) => diffs.push(diff));
    const room = (channelId: string, members: Array<{ userId: string; media?: VoiceMedia }>) => ({ channelId, name: channelId, userLimit: 0, members });
    store.applySnapshot({ seq: 1, payload: { rooms: [room(A, [{ userId: U, media: camera }, { userId: V }]), room(B, [])] } });
    expect(diffs).toEqual([]);
    store.applySnapshot({ seq: 5, payload: { rooms: [room(A, [{ userId: V, media: { ...off, deaf: true } }]), room(B, [{ userId: U, media: off }])] } });
    expect(diffs).toHaveLength(1);
    expect(diffs[0]!.moved).toEqual([{ from: A, to: B, member: { userId: U, media: off } }]);
    expect(diffs[0]!.mediaChanged).toEqual([
      { channelId: A, member: { userId: V, media: { ...off, deaf: true } }, before: off, after: { ...off, deaf: true } },
      { channelId: B, member: { userId: U, media: off }, before: camera, after: off },
    ]);
  });

  it("leaves joins and leaves to joined and left: their flags are on the member", () => {
    const store = seeded();
    const diffs: PresenceDiff[] = [];
    store.onChange((diff) => diffs.push(diff));
    store.applyEvent(ev(11, "voice.joined", { channelId: B, userId: "210000000000000004", media: camera }));
    store.applyEvent(ev(12, "voice.left", { channelId: B, userId: W }));
    expect(diffs.map((diff) => [diff.joined.length, diff.left.length, diff.mediaChanged.length])).toEqual([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    expect(diffs[0]!.joined[0]!.member.media).toEqual(camera);
  });
});

describe("the guild's status", () => {
  it("is available before any snapshot and when a snapshot (an older hub's) does not say", () => {
    const store = new PresenceStore();
    expect(store.guildStatus).toBe("available");
    store.applySnapshot({ seq: 1, payload: { rooms: [] } });
    expect(store.getSnapshot().guildStatus).toBe("available");
  });

  it("follows guild.status events and snapshots, notifying subscribers, with no rooms changed", () => {
    const store = seeded();
    const rooms = store.getSnapshot().rooms;
    let notified = 0;
    store.subscribe(() => notified++);
    const diffs: PresenceDiff[] = [];
    store.onChange((diff) => diffs.push(diff));
    expect(store.applyEvent(ev(11, "guild.status", { status: "unavailable" }))).toBe("applied");
    expect(store.guildStatus).toBe("unavailable");
    expect(store.getSnapshot()).toMatchObject({ seq: 11, guildStatus: "unavailable" });
    expect(store.getSnapshot().rooms).toEqual(rooms);
    expect(notified).toBe(1);
    expect(diffs, "a status is not a presence change").toEqual([]);
    store.applySnapshot({ seq: 20, payload: { rooms: [], status: "absent" } });
    expect(store.guildStatus).toBe("absent");
    store.applySnapshot({ seq: 30, payload: { rooms: [] } });
    expect(store.guildStatus).toBe("available");
  });

  it("reaches absent after the room.deleted of every room, as the hub sends them", () => {
    const store = seeded();
    store.applyEvent(ev(11, "room.deleted", { channelId: A }));
    store.applyEvent(ev(12, "room.deleted", { channelId: B }));
    store.applyEvent(ev(13, "guild.status", { status: "absent" }));
    expect(store.getSnapshot()).toEqual({ seq: 13, rooms: [], guildStatus: "absent" });
    expect(store.roomOf(U)).toBeUndefined();
  });
});
