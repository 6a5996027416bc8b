import { evictDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { channelOf, SocketLimits, type SnapshotMessage } from "../../protocol/index.js";
import { hubStub, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { joined, roomCreated } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

async function ingest(...events: unknown[]): Promise<void> {
  expect((await postInternal({ events })).status).toBe(200);
}

async function liveSocket(extra: Record<string, unknown> = {}): Promise<TestSocket> {
  const socket = await TestSocket.open();
  await socket.auth(await mintToken({ sub: newUserId() }), extra);
  await socket.waitFor((m) => m.type === "snapshot", "the first snapshot");
  return socket;
}

const snapshots = (socket: TestSocket) => socket.messages.filter((m): m is SnapshotMessage => m.type === "snapshot");

/** Sends a room filter change and waits for the snapshot that answers it. */
async function changeRooms(socket: TestSocket, rooms: string[] | undefined): Promise<SnapshotMessage> {
  const before = snapshots(socket).length;
  socket.send({ type: "rooms", ...(rooms ? { rooms } : {}) });
  await socket.waitFor(() => snapshots(socket).length > before, "the snapshot answering the room change");
  return snapshots(socket).at(-1)!;
}

const membersByRoom = (snapshot: SnapshotMessage, rooms: string[]) =>
  Object.fromEntries(rooms.map((id) => [id, snapshot.payload.rooms.find((r) => r.channelId === id)?.members.map((m) => m.userId)]));

afterEach(() => vi.restoreAllMocks());

describe("changing the room filter on a live socket", () => {
  it("answers with a snapshot at the current seq under the new filter, then filters by it", async () => {
    const [a, b] = [newChannelId(), newChannelId()];
    const [ua, ub] = [newUserId(), newUserId()];
    const socket = await liveSocket({ rooms: [a] });
    await ingest(roomCreated(a), roomCreated(b), joined(a, ua), joined(b, ub));
    const seen = await socket.waitForEvents(3, "room events and the join in a");
    const snapshot = await changeRooms(socket, [b]);
    expect(snapshot.seq).toBe(seen.at(-1)!.seq + 1); // the join in b was filtered out but counted
    expect(membersByRoom(snapshot, [a, b])).toEqual({ [a]: [], [b]: [ub] });

    const [later1, later2] = [newUserId(), newUserId()];
    await ingest(joined(a, later1), joined(b, later2));
    const events = await socket.waitForEvents(4, "the join in b");
    expect(events.at(-1)).toMatchObject({ event: "voice.joined", payload: { channelId: b, userId: later2 }, seq: snapshot.seq + 2 });
    expect(socket.closed).toBeUndefined();
  });

  it("receives every room's voice events again when `rooms` is absent, and none with []", async () => {
    const [a, b] = [newChannelId(), newChannelId()];
    const socket = await liveSocket({ rooms: [a] });
    await ingest(roomCreated(a), roomCreated(b), joined(b, newUserId()));
    await socket.waitForEvents(2, "the room events");
    const everything = await changeRooms(socket, undefined);
    expect(membersByRoom(everything, [b])[b]).toHaveLength(1);
    const none = await changeRooms(socket, []);
    expect(membersByRoom(none, [a, b])).toEqual({ [a]: [], [b]: [] });
    await ingest(joined(a, newUserId()), roomCreated(newChannelId()));
    await socket.waitFor((m) => m.type === "event" && m.event === "room.created" && m.seq > none.seq, "the next room event");
    expect(socket.events().filter((e) => e.seq > none.seq).map((e) => e.event)).toEqual(["room.created"]);
  });

  it("keeps the new filter while the hub hibernates", async () => {
    const [a, b] = [newChannelId(), newChannelId()];
    const socket = await liveSocket({ rooms: [a] });
    await ingest(roomCreated(a), roomCreated(b));
    await socket.waitForEvents(2, "the room events");
    const mark = await changeRooms(socket, [b]);
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    await ingest(joined(a, newUserId()), joined(b, newUserId()));
    await socket.waitFor((m) => m.type === "event" && m.seq > mark.seq, "an event after the change");
    expect(socket.events().filter((e) => e.seq > mark.seq).map((e) => channelOf(e))).toEqual([b]);
  });

  it("keeps a filter changed before a token refresh that carries no rooms", async () => {
    const [a, b] = [newChannelId(), newChannelId()];
    const user = newUserId();
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: user }), { rooms: [a] });
    await ingest(roomCreated(a), roomCreated(b));
    await socket.waitForEvents(2, "the room events");
    const mark = await changeRooms(socket, [b]);
    socket.send({ type: "auth", token: await mintToken({ sub: user }) });
    await socket.waitFor(() => socket.messages.filter((m) => m.type === "ack").length === 2, "the refresh's ack");
    await ingest(joined(a, newUserId()), joined(b, newUserId()));
    await socket.waitFor((m) => m.type === "event" && m.seq > mark.seq, "an event after the refresh");
    expect(socket.events().filter((e) => e.seq > mark.seq).map((e) => channelOf(e))).toEqual([b]);
  });

  it("closes 4409 before authentication and for a malformed filter", async () => {
    const early = await TestSocket.open();
    early.send({ type: "rooms", rooms: [newChannelId()] });
    expect(await early.waitForClose()).toMatchObject({ code: 4409, reason: "authenticate first" });
    const malformed = await liveSocket();
    malformed.send({ type: "rooms", rooms: ["not-a-snowflake"] });
    expect((await malformed.waitForClose()).code).toBe(4409);
  });

  it(`closes 4429 after a burst of ${SocketLimits.roomsBurst} changes`, async () => {
    const socket = await liveSocket();
    for (let i = 0; i <= SocketLimits.roomsBurst; i++) socket.send({ type: "rooms", rooms: [newChannelId()] });
    expect(await socket.waitForClose()).toMatchObject({ code: 4429, reason: "changing rooms too often" });
    expect(snapshots(socket)).toHaveLength(1 + SocketLimits.roomsBurst);
  });

  it("drops a change that arrives after the hub closed the socket: no error, and the socket stays out of the fan-out", async () => {
    const errors = vi.spyOn(console, "error");
    const logged = vi.spyOn(console, "log");
    /** The fan-out's socket count, from the line the hub logs per flush. */
    const audienceAfterPublish = async (watcher: TestSocket, count: number) => {
      await ingest(roomCreated(newChannelId()));
      await watcher.waitForEvents(count, "the room event");
      const lines = logged.mock.calls.flat().map(String).filter((line) => line.includes('"GuildHub flushed"'));
      const line = JSON.parse(lines.at(-1)!) as { sockets: number; shed: number };
      expect(line.shed).toBe(0); // no send was tried on a socket already closed
      return line.sockets;
    };
    const watcher = await liveSocket();
    const token = await mintToken({ sub: newUserId() });
    const socket = await TestSocket.open();
    await socket.auth(token);
    const before = await audienceAfterPublish(watcher, 1);
    // Re-authenticating past the burst closes the socket 4429; the client's filter change was already on its way.
    for (let i = 0; i <= SocketLimits.reauthBurst; i++) socket.send({ type: "auth", token });
    socket.send({ type: "rooms", rooms: [newChannelId()] });
    expect(await socket.waitForClose()).toMatchObject({ code: 4429, reason: "re-authenticating too often" });
    expect(await audienceAfterPublish(watcher, 2)).toBe(before - 1);
    expect(errors.mock.calls.flat().filter((line) => String(line).includes("GuildHub"))).toEqual([]);
    watcher.ws.close(1000);
  });
});
