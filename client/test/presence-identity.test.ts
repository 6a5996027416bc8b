import { describe, expect, it } from "vitest";
import type { EventEnvelope } from "../../protocol/index.js";
import { PresenceStore } from "../presence.js";

const A = "110000000000000001";
const B = "110000000000000002";
const U = "210000000000000001";

// The README: "an unchanged room keeps its object identity", and useRoom "re-renders only when that room changes".
// A snapshot (every resync, and every setRooms() answer) used to give every room a new object, so every useRoom
// re-rendered on a filter change.
describe("PresenceStore snapshots and room identity", () => {
  it("keeps the object of a room a later snapshot did not change, and replaces the one it changed", () => {
    const store = new PresenceStore();
    const roomA = { channelId: A, name: "A", userLimit: 4, parentId: null, members: [{ userId: U, username: "u" }] };
    const roomB = { channelId: B, name: "B", userLimit: 4, parentId: null, members: [] };
    store.applySnapshot({ seq: 1, payload: { rooms: [roomA, roomB] } });
    const [beforeA, beforeB] = store.getSnapshot().rooms;
    store.applySnapshot({ seq: 2, payload: { rooms: [structuredClone(roomA), { ...roomB, name: "B2" }] } });
    const [afterA, afterB] = store.getSnapshot().rooms;
    expect(afterA).toBe(beforeA);
    expect(afterB).not.toBe(beforeB);
    expect(afterB!.name).toBe("B2");
  });

  it("gives a room from room.created the shape the hub's snapshot gives it (parentId null, not absent)", () => {
    const store = new PresenceStore();
    store.applySnapshot({ seq: 1, payload: { rooms: [] } });
    const created = { v: 1, type: "event", event: "room.created", payload: { guildId: "100000000000000001", channelId: A, name: "A", userLimit: 4 }, ts: 0, seq: 2 };
    store.applyEvent(created as EventEnvelope);
    const fromEvent = store.getSnapshot().rooms[0];
    expect(fromEvent).toEqual({ channelId: A, name: "A", userLimit: 4, parentId: null, members: [] });
    // The hub's next snapshot of the same room changes nothing: same object, nothing re-renders.
    store.applySnapshot({ seq: 3, payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, parentId: null, members: [] }] } });
    expect(store.getSnapshot().rooms[0]).toBe(fromEvent);
  });
});
