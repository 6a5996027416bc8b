import { describe, expect, it } from "vitest";
import type { EventEnvelope } from "../../protocol/index.js";
import { PresenceStore } from "../presence.js";

const guildId = "100000000000000001";
const A = "110000000000000001";
const B = "110000000000000002";
const U = "210000000000000001";
const V = "210000000000000002";

const ev = (seq: number, event: EventEnvelope["event"], payload: Record<string, unknown>) =>
  ({ v: 1, type: "event", event, payload: { guildId, ...payload }, ts: 0, seq }) as EventEnvelope;

function seeded(): PresenceStore {
  const store = new PresenceStore();
  store.applySnapshot({ seq: 10, payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [{ userId: U, username: "u" }] }] } });
  return store;
}

const members = (store: PresenceStore) => Object.fromEntries(store.getSnapshot().rooms.map((r) => [r.channelId, r.members.map((m) => m.userId)]));

describe("PresenceStore", () => {
  it("takes a snapshot as the whole truth", () => {
    const store = seeded();
    expect(store.seq).toBe(10);
    expect(members(store)).toEqual({ [A]: [U] });
  });

  it("applies every event kind", () => {
    const store = seeded();
    expect(store.applyEvent(ev(11, "room.created", { channelId: B, name: "B", userLimit: 2 }))).toBe("applied");
    store.applyEvent(ev(12, "voice.joined", { channelId: B, userId: V, username: "v" }));
    store.applyEvent(ev(13, "voice.left", { channelId: A, userId: U }));
    expect(members(store)).toEqual({ [A]: [], [B]: [V] });
    store.applyEvent(ev(14, "room.deleted", { channelId: B }));
    expect(members(store)).toEqual({ [A]: [] });
    expect(store.seq).toBe(14);
  });

  it("keeps each room's creator from room.created, and from room.updated when an older hub's update omits it", () => {
    const store = seeded();
    store.applyEvent(ev(11, "room.created", { channelId: B, name: "B", userLimit: 2, creatorId: U }));
    store.applyEvent(ev(12, "room.updated", { channelId: B, name: "B2", userLimit: 3 }));
    store.applyEvent(ev(13, "room.updated", { channelId: A, name: "A", userLimit: 4, creatorId: V }));
    const creators = Object.fromEntries(store.getSnapshot().rooms.map((r) => [r.channelId, r.creatorId]));
    expect(creators).toEqual({ [A]: V, [B]: U });
    expect(store.getSnapshot().rooms.find((r) => r.channelId === B)?.name).toBe("B2");
  });

  it("moves a member on left(old) then joined(new), and on a lone joined elsewhere", () => {
    const store = seeded();
    store.applyEvent(ev(11, "room.created", { channelId: B, name: "B", userLimit: 2 }));
    store.applyEvent(ev(12, "voice.left", { channelId: A, userId: U }));
    store.applyEvent(ev(13, "voice.joined", { channelId: B, userId: U }));
    expect(members(store)).toEqual({ [A]: [], [B]: [U] });
    store.applyEvent(ev(14, "voice.joined", { channelId: A, userId: U }));
    expect(members(store)).toEqual({ [A]: [U], [B]: [] });
  });

  it("ignores duplicates and reports a gap without applying it", () => {
    const store = seeded();
    expect(store.applyEvent(ev(10, "voice.left", { channelId: A, userId: U }))).toBe("duplicate");
    expect(store.applyEvent(ev(9, "voice.left", { channelId: A, userId: U }))).toBe("duplicate");
    expect(store.applyEvent(ev(12, "voice.left", { channelId: A, userId: U }))).toBe("gap");
    expect(members(store)).toEqual({ [A]: [U] });
    expect(store.seq).toBe(10);
  });

  it("moves past the seq of an event it does not know without touching the rooms", () => {
    const store = seeded();
    const before = store.getSnapshot().rooms;
    expect(store.skip(11)).toBe("applied");
    expect(store.seq).toBe(11);
    expect(store.getSnapshot().rooms).toEqual(before);
    expect(store.skip(11)).toBe("duplicate");
    expect(store.skip(13)).toBe("gap");
    expect(store.applyEvent(ev(12, "voice.left", { channelId: A, userId: U }))).toBe("applied");
  });

  it("does not treat skipped seqs as gaps when filtering rooms", () => {
    const store = new PresenceStore(false);
    store.applySnapshot({ seq: 1, payload: { rooms: [] } });
    expect(store.applyEvent(ev(5, "room.created", { channelId: A, name: "A", userLimit: 0 }))).toBe("applied");
  });

  it("notifies subscribers and keeps the snapshot identity until something changes", () => {
    const store = seeded();
    let calls = 0;
    const unsubscribe = store.subscribe(() => calls++);
    const before = store.getSnapshot();
    expect(store.getSnapshot()).toBe(before);
    store.applyEvent(ev(10, "voice.left", { channelId: A, userId: U })); // duplicate: no change
    expect(calls).toBe(0);
    store.applyEvent(ev(11, "voice.left", { channelId: A, userId: U }));
    expect(calls).toBe(1);
    expect(store.getSnapshot()).not.toBe(before);
    unsubscribe();
  });
});

describe("PresenceStore selectors", () => {
  it("gives a room's members and a user's room", () => {
    const store = seeded();
    expect(store.membersOf(A)).toEqual([{ userId: U, username: "u" }]);
    expect(store.membersOf(B)).toEqual([]);
    expect(store.roomOf(U)?.channelId).toBe(A);
    expect(store.roomOf(V)).toBeUndefined();
  });

  it("keeps a known room on a repeated room.created, and its members on room.updated", () => {
    const store = seeded();
    store.applyEvent(ev(11, "room.created", { channelId: A, name: "Renamed?", userLimit: 9 }));
    expect(store.getSnapshot().rooms[0]).toMatchObject({ name: "A", userLimit: 4 });
    store.applyEvent(ev(12, "room.updated", { channelId: A, name: "A2", userLimit: 2 }));
    expect(store.getSnapshot().rooms[0]).toMatchObject({ name: "A2", userLimit: 2, members: [{ userId: U }] });
  });
});

describe("PresenceStore.onChange", () => {
  const roomB = { channelId: B, name: "B", userLimit: 2 };

  it("reports joins, leaves, moves, created and deleted rooms, event by event", () => {
    const store = seeded();
    const diffs: unknown[] = [];
    const off = store.onChange((diff) => diffs.push(diff));
    store.applyEvent(ev(11, "room.created", roomB));
    store.applyEvent(ev(12, "voice.joined", { channelId: B, userId: V }));
    store.applyEvent(ev(13, "voice.joined", { channelId: B, userId: U })); // a move
    store.applyEvent(ev(14, "voice.left", { channelId: B, userId: V }));
    store.applyEvent(ev(15, "room.deleted", { channelId: B }));
    const none = { joined: [], left: [], moved: [], created: [], deleted: [], mediaChanged: [] };
    expect(diffs).toEqual([
      { ...none, created: [{ ...roomB, parentId: null, members: [] }] },
      { ...none, joined: [{ channelId: B, member: { userId: V } }] },
      { ...none, moved: [{ from: A, to: B, member: { userId: U } }] },
      { ...none, left: [{ channelId: B, member: { userId: V } }] },
      { ...none, left: [{ channelId: B, member: { userId: U } }], deleted: [expect.objectContaining({ channelId: B })] },
    ]);
    off();
    store.applyEvent(ev(16, "room.created", roomB));
    expect(diffs).toHaveLength(5);
  });

  it("reports what a fresh snapshot changed against the state it replaces, and nothing for the same state", () => {
    const store = seeded();
    const diffs: Array<Record<string, unknown[]>> = [];
    store.onChange((diff) => diffs.push(diff as unknown as Record<string, unknown[]>));
    store.applySnapshot({ seq: 20, payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [{ userId: U, username: "u" }] }] } });
    expect(diffs).toEqual([]);
    store.applySnapshot({
      seq: 30,
      payload: { rooms: [{ channelId: B, name: "B", userLimit: 2, members: [{ userId: U }, { userId: V }] }] },
    });
    expect(diffs).toHaveLength(1);
    expect(diffs[0]).toMatchObject({
      joined: [{ channelId: B, member: { userId: V } }],
      moved: [{ from: A, to: B, member: { userId: U } }],
      left: [],
      created: [expect.objectContaining({ channelId: B })],
      deleted: [expect.objectContaining({ channelId: A })],
    });
  });
});
