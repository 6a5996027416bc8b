// The hub refuses a room filter of more than 50 rooms, or with an id that is not a snowflake, by closing the
// socket 4409; the SDK used to send it anyway and, as it carries the same filter on every reconnect, retried
// forever without ever being live. It now refuses such a filter where the app passes it.
import { afterEach, describe, expect, it } from "vitest";
import { connect, type RealtimeConnection } from "../../client/connect.js";
import { newChannelId, newUserId } from "./support/edge.js";
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
const tooMany = () => Array.from({ length: 51 }, newChannelId);

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
  // Known defect, not fixed: the hub takes a burst of 5 filter changes per socket, then one per 2 s, and closes
  // the socket 4429 past that; the SDK sends every setRooms() at once, so an app (or a RealtimeProvider whose
  // `rooms` prop follows, say, the rooms on screen) that changes the filter 6 times in 2 s loses its socket and,
  // with the default backoff, waits 15–30 s before reconnecting. The fix is to pace the changes in the SDK
  // (coalesce to the newest filter, sent when the hub's budget allows); it does not fit the main entry's 10 KB
  // budget without other trimming. This test fails until then.
  it.fails("keeps the socket when the app changes the filter 8 times in a row", async () => {
    const rooms = Array.from({ length: 8 }, newChannelId);
    client = connect({ ...options(), rooms: [] });
    await expect.poll(() => client!.status).toBe("live");
    const opened = EdgeSocket.opened;
    const closes: string[] = [];
    client.subscribe((state) => state.detail?.startsWith("closed") && closes.push(state.detail));
    for (const room of rooms) client.setRooms([room]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(closes).toEqual([]);
    expect(EdgeSocket.opened).toBe(opened);
  });
});
