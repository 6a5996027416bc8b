// The hub refuses a room filter of more than MAX_FILTER_ROOMS rooms, or with an id that is not a snowflake, by closing the
// socket 4409; the SDK used to send it anyway and, as it carries the same filter on every reconnect, retried
// forever without ever being live. It now refuses such a filter where the app passes it.
import { afterEach, describe, expect, it } from "vitest";
import { connect, type RealtimeConnection } from "../../client/connect.js";
import { MAX_FILTER_ROOMS } from "../../protocol/index.js";
import { newChannelId, newUserId, postInternal } from "./support/edge.js";
import { joined, roomCreated } from "./support/events.js";
import { EdgeSocket } from "./support/sdk-socket.js";
import { mintToken } from "./support/tokens.js";

let client: RealtimeConnection | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
});

const options = () => {
  const sub = newUserId();
  return { url: "https://edge.test/ws", getToken: () => mintToken({ sub }), WebSocket: EdgeSocket, browser: false as const, backoff: { minMs: 1, maxMs: 20, factor: 2 } };
};
const tooMany = () => Array.from({ length: MAX_FILTER_ROOMS + 1 }, newChannelId);

describe("a room filter the hub would refuse", () => {
  it("is refused by connect(), before any socket opens", () => {
    const before = EdgeSocket.opened;
    expect(() => (client = connect({ ...options(), rooms: tooMany() }))).toThrow(RangeError);
    expect(() => (client = connect({ ...options(), rooms: ["not-a-room"] }))).toThrow(RangeError);
    expect(EdgeSocket.opened).toBe(before);
  });

  it("is refused by setRooms(), and the live connection keeps its filter and its socket", async () => {
    const room = newChannelId();
    client = connect({ ...options(), rooms: [room] });
    await expect.poll(() => client!.status).toBe("live");
    const opened = EdgeSocket.opened;
    expect(() => client!.setRooms(tooMany())).toThrow(RangeError);
    expect(() => client!.setRooms([room, "0x10"])).toThrow(RangeError);
    client.setRooms(undefined); // a valid change still goes through on the same socket
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.status).toBe("live");
    expect(EdgeSocket.opened).toBe(opened);
  });
});

describe("room filter changes faster than the hub allows", () => {
  // The hub takes a burst of 5 filter changes per socket, then one per 2 s, and closes the socket 4429 past that.
  // The SDK used to send every setRooms() at once, so an app (or a RealtimeProvider whose `rooms` prop follows,
  // say, the rooms on screen) that changed the filter 6 times in 2 s lost its socket and waited 15–30 s. It now
  // paces the changes to the hub's budget, coalescing to the newest filter.
  it("keeps the socket when the app changes the filter 8 times in a row, and ends on the newest filter", async () => {
    const rooms = Array.from({ length: 8 }, newChannelId);
    await postInternal({ events: rooms.map((room, i) => roomCreated(room, `Paced ${i}`)) });
    client = connect({ ...options(), rooms: [] });
    await expect.poll(() => client!.status).toBe("live");
    const opened = EdgeSocket.opened;
    const closes: string[] = [];
    client.subscribe((state) => state.detail?.startsWith("closed") && closes.push(state.detail));
    for (const room of rooms) client.setRooms([room]);
    const newest = rooms.at(-1)!;
    const player = newUserId();
    await postInternal({ events: [joined(newest, player)] });
    // Answered by the snapshot for the newest filter, sent once the hub's budget allows (within about 2.5 s).
    await expect.poll(() => client!.presence.membersOf(newest).map((m) => m.userId), { timeout: 5_000 }).toEqual([player]);
    expect(closes).toEqual([]);
    expect(EdgeSocket.opened).toBe(opened);
  });
});
